using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using MetaCompute.Api.Tests.Infrastructure;
using Npgsql;
using Xunit.Abstractions;

namespace MetaCompute.Api.Tests.Fuzzing;

/// <summary>
/// Every operation of the OpenAPI document, sent malformed with an operator key, a tenant key and none: no answer may be
/// a 5xx, every error must be problem+json saying its status, and no table may change unless the answer was a 2xx (or,
/// for a change under an Idempotency-Key, the key's own row that stores the answer for replays). Tables are watched by
/// a row trigger on each, counting the changes that commit.
/// </summary>
public sealed class OpenApiFuzzTests(ApiFactory api, ITestOutputHelper output) : IClassFixture<ApiFactory>
{
    private static readonly string Pool = ApiFactory.Inventory.Pools[0].Id;

    [Fact]
    public async Task No_malformed_request_gets_a_5xx_a_bare_error_or_changes_a_table_it_was_refused()
    {
        var known = await KnownValuesAsync();
        await WatchTablesAsync();
        using var documentClient = api.ClientWithKey(null);
        var fuzzer = new OpenApiFuzzer(JsonNode.Parse(await documentClient.GetStringAsync("/openapi/v1.json"))!, known);
        var clients = new Dictionary<string, HttpClient>
        {
            ["operator"] = api.OperatorClient(),
            ["tenant"] = api.ClientWithKey(known["apiKey"]),
            ["none"] = api.ClientWithKey(null),
        };

        var failures = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var statuses = new System.Collections.Concurrent.ConcurrentDictionary<int, int>();
        var stopwatch = Stopwatch.StartNew();
        var sent = 0;

        // One request, its answer checked; with watch, also the tables it changed.
        async Task<int> SendAsync(HttpClient client, FuzzRequest request, bool watch)
        {
            var before = watch ? await ChangesAsync() : [];
            using var response = await client.SendAsync(request.ToMessage());
            var after = watch ? await ChangesAsync() : [];
            Interlocked.Increment(ref sent);
            var status = (int)response.StatusCode;
            statuses.AddOrUpdate(status, 1, (_, n) => n + 1);
            var problem = await CheckAnswerAsync(response);
            var changed = after.Where(t => t.Value != before.GetValueOrDefault(t.Key)).Select(t => t.Key)
                .Where(table => status >= 300 && !(table == "idempotency_keys" && request.HasIdempotencyKey)).ToList();
            if (problem is not null || changed.Count > 0)
            {
                failures.Enqueue($"{request.Caller} {request.Operation} [{request.Mutation}] {request.Method} {Shorten(request.Target)}: {status}"
                    + (problem is null ? "" : $" {problem}") + (changed.Count == 0 ? "" : $" changed {string.Join(", ", changed)}"));
            }

            return status;
        }

        // The valid request of each operation and caller goes first, alone: a caller refused at the door (no key, or the
        // other role's key) is refused whatever it sends, so a few requests show that it is and change nothing.
        var plan = new List<(HttpClient Client, FuzzRequest Request)>();
        for (var round = 0; round < Rounds; round++)
        {
            foreach (var (path, method, operation) in fuzzer.Operations())
            {
                foreach (var (caller, client) in clients)
                {
                    var requests = fuzzer.RequestsFor(path, method, operation, caller).ToList();
                    var refused = await SendAsync(client, requests[0], watch: true) is 401 or 403;
                    plan.AddRange(requests.Skip(1).Take(refused ? 2 : int.MaxValue).Select(r => (client, r)));
                }
            }
        }

        if (Concurrency == 1)
        {
            foreach (var (client, request) in plan)
            {
                await SendAsync(client, request, watch: true);
            }
        }
        else
        {
            // Concurrent requests cannot be told apart in the tables' counters; their answers are checked, and the
            // ledger's invariant below.
            await Parallel.ForEachAsync(plan, new ParallelOptions { MaxDegreeOfParallelism = Concurrency },
                async (item, _) => await SendAsync(item.Client, item.Request, watch: false));
        }

        output.WriteLine($"{sent} requests ({Rounds} rounds, {Concurrency} at a time) in {stopwatch.Elapsed.TotalSeconds:0.0} s; statuses: "
            + string.Join(", ", statuses.OrderBy(s => s.Key).Select(s => $"{s.Key} × {s.Value}")));
        Assert.True(failures.IsEmpty, $"{failures.Count} of {sent} requests failed the contract:\n" + string.Join("\n", failures.Take(30)));
        Assert.True(sent > 3_000 * Rounds, $"only {sent} requests were made");
        Assert.Equal(0L, await api.ScalarAsync<long>(TenantClient.OverlapSql));
    }

    /// <summary>bench/fuzz.sh sets these for its longer and concurrent runs; CI makes one pass, one request at a time.</summary>
    private static int Rounds => int.TryParse(Environment.GetEnvironmentVariable("METACOMPUTE_FUZZ_ROUNDS"), out var n) && n > 0 ? n : 1;

    private static int Concurrency => int.TryParse(Environment.GetEnvironmentVariable("METACOMPUTE_FUZZ_CONCURRENCY"), out var n) && n > 0 ? n : 1;

    /// <summary>What is wrong with an answer, if anything: a 5xx, or an error that is not a problem naming its status.</summary>
    public static async Task<string?> CheckAnswerAsync(HttpResponseMessage response)
    {
        var status = (int)response.StatusCode;
        if (status >= 500)
        {
            return "a 5xx";
        }

        if (status < 400)
        {
            return null;
        }

        if (response.Content.Headers.ContentType?.MediaType != "application/problem+json")
        {
            return $"an error as {response.Content.Headers.ContentType?.MediaType ?? "no content"}";
        }

        try
        {
            var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
            return body.GetProperty("status").GetInt32() == status && body.GetProperty("type").GetString() is { Length: > 0 }
                ? null
                : "a problem whose status or type is wrong";
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            return "a problem body that is not a problem";
        }
    }

    /// <summary>Ids and values that get a request past its first check: a tenant with a key and a reservation, a pool, a node.</summary>
    private async Task<Dictionary<string, string>> KnownValuesAsync()
    {
        var tenant = await api.CreateTenantAsync();
        using var operatorClient = api.OperatorClient();
        (await operatorClient.PutAsJsonAsync($"/v1/admin/tenants/{tenant.Id}/quotas/{Pool}", new { maxConcurrentGpus = 100_000 })).EnsureSuccessStatusCode();
        // A second key of the tenant's for the key routes, so that revoking it leaves the key the fuzzer calls with.
        var spareKey = (await (await operatorClient.PostAsJsonAsync($"/v1/admin/tenants/{tenant.Id}/api-keys", new { name = "spare" }))
            .Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetString()!;
        using var client = api.ClientWithKey(tenant.ApiKey);
        var reservation = await (await client.ReserveAsync(new { poolId = Pool, gpuCount = 8, durationHours = 4 })).ReadReservationAsync();
        // The first offering signs with a secret created on first use; create it before the tables are watched.
        (await client.GetAsync($"/v1/offerings?poolId={Pool}&gpuCount=8&durationHours=4")).EnsureSuccessStatusCode();
        var node = ApiFactory.Inventory.Nodes.First(n => n.PoolId == Pool);
        return new Dictionary<string, string>
        {
            ["apiKey"] = tenant.ApiKey, ["tenantId"] = tenant.Id, ["keyId"] = spareKey, ["reservationId"] = reservation.Id,
            ["poolId"] = Pool, ["nodeId"] = node.Id.ToString(), ["fabricIsland"] = ApiFactory.Inventory.Islands.First(i => i.PoolId == Pool).Name,
            ["gpuCount"] = "8", ["durationHours"] = "4", ["limit"] = "10", ["name"] = "fuzz", ["reason"] = "fuzz", ["nodeCount"] = "1",
            ["maxConcurrentGpus"] = "64", ["weight"] = "1", ["additionalHours"] = "1", ["stepMinutes"] = "60",
        };
    }

    private async Task WatchTablesAsync()
    {
        await using var connection = await api.OpenConnectionAsync();
        await using var command = new NpgsqlCommand("""
            CREATE TABLE fuzz_changes (table_name text PRIMARY KEY, changes bigint NOT NULL);
            CREATE FUNCTION fuzz_count() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              INSERT INTO fuzz_changes VALUES (TG_TABLE_NAME, 1) ON CONFLICT (table_name) DO UPDATE SET changes = fuzz_changes.changes + 1;
              RETURN NULL;
            END $$;
            DO $$ DECLARE t text; BEGIN
              FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'fuzz_changes' LOOP
                EXECUTE format('CREATE TRIGGER fuzz_count AFTER INSERT OR UPDATE OR DELETE ON %I FOR EACH ROW EXECUTE FUNCTION fuzz_count()', t);
              END LOOP;
            END $$;
            """, connection);
        await command.ExecuteNonQueryAsync();
    }

    private async Task<Dictionary<string, long>> ChangesAsync()
    {
        await using var connection = await api.OpenConnectionAsync();
        await using var command = new NpgsqlCommand("SELECT table_name, changes FROM fuzz_changes", connection);
        await using var reader = await command.ExecuteReaderAsync();
        var changes = new Dictionary<string, long>();
        while (await reader.ReadAsync())
        {
            changes[reader.GetString(0)] = reader.GetInt64(1);
        }

        return changes;
    }

    private static string Shorten(string target) => target.Length > 160 ? target[..160] + "…" : target;
}
