using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using MetaCompute.Api.Catalog;
using MetaCompute.Api.Infrastructure;
using MetaCompute.Api.Tests.Infrastructure;

namespace MetaCompute.Api.Tests;

/// <summary>
/// Inputs at the edges of what the API takes: times at the ends of the calendar, NUL characters, missing fields,
/// parameter combinations that skipped a cap. Each is a 400 naming the field and changes nothing.
/// </summary>
public sealed class InputBoundsTests(ApiFactory api) : IClassFixture<ApiFactory>
{
    private static readonly string Pool = ApiFactory.Inventory.Pools[0].Id;
    private const string Never = "9999-12-31T23:59:59Z";
    private const string DayOne = "0001-01-01T00:00:00Z";

    public static TheoryData<string, string, string> TimesAtTheCalendarsEdges => new()
    {
        { "tenant", $"/v1/usage?to={DayOne}", "to" },
        { "tenant", $"/v1/usage?from={Never}", "from" },
        { "operator", $"/v1/admin/revenue?to={DayOne}", "to" },
        { "tenant", $"/v1/pools/{Pool}/availability?from={Never}", "from" },
        { "tenant", $"/v1/pools/{Pool}/availability?to={DayOne}", "to" },
        { "tenant", $"/v1/offerings?poolId={Pool}&gpuCount=8&durationHours=4&earliestStart={Never}", "earliestStart" },
        { "tenant", $"/v1/offerings?poolId={Pool}&gpuCount=8&durationHours=4&latestStart={Never}", "latestStart" },
        { "operator", $"/v1/admin/utilization?poolId={Pool}&from={Never}", "from" },
        { "operator", $"/v1/admin/utilization?poolId={Pool}&to={DayOne}", "to" },
        // Only a `to` before now: from defaults to now, so the range would run backwards.
        { "operator", $"/v1/admin/utilization?poolId={Pool}&to=2001-01-01T00:00:00Z", "to" },
        { "tenant", $"/v1/pools/{Pool}/availability?to=2001-01-01T00:00:00Z", "to" },
        { "tenant", $"/v1/offerings?poolId={Pool}&gpuCount=8&durationHours=2147483647", "durationHours" },
    };

    [Theory]
    [MemberData(nameof(TimesAtTheCalendarsEdges))]
    public async Task A_time_at_the_calendars_edge_is_a_400_naming_the_field(string caller, string path, string field)
    {
        using var client = await ClientAsync(caller);
        var problem = await (await client.GetAsync(path)).AssertProblemAsync(HttpStatusCode.BadRequest, Problems.ValidationFailedType);
        Assert.True(problem.GetProperty("errors").TryGetProperty(field, out _), problem.ToString());
    }

    public static TheoryData<string, string> BookingsBeyondTheCalendar => new()
    {
        { $$"""{"poolId":"{{Pool}}","gpuCount":8,"startAt":"{{Never}}","durationHours":4}""", "startAt" },
        { $$"""{"poolId":"{{Pool}}","gpuCount":8,"durationHours":2147483647}""", "durationHours" },
        { $$"""{"poolId":"{{Pool}}","gpuCount":8,"startAt":"2030-01-01T00:00:00Z","endAt":"{{Never}}"}""", "endAt" },
        { $$$"""{"poolId":"{{{Pool}}}","gpuCount":8,"durationHours":4,"waitForCapacity":{"maxWaitMinutes":2147483647}}""", "waitForCapacity.maxWaitMinutes" },
    };

    [Theory]
    [MemberData(nameof(BookingsBeyondTheCalendar))]
    public async Task A_booking_beyond_the_calendar_is_a_400_naming_the_field_and_books_nothing(string body, string field)
    {
        using var client = await ClientAsync("tenant");
        var before = await DatabaseSnapshot.TakeAsync(api);
        var problem = await (await PostJsonAsync(client, "/v1/reservations", body, idempotencyKey: Guid.NewGuid().ToString()))
            .AssertProblemAsync(HttpStatusCode.BadRequest, Problems.ValidationFailedType);
        Assert.True(problem.GetProperty("errors").TryGetProperty(field, out _), problem.ToString());
        Assert.Empty(DatabaseSnapshot.Changed(before, await DatabaseSnapshot.TakeAsync(api)));
    }

    public static TheoryData<string, string, string, string?, string> TextWithNul => new()
    {
        { "tenant", "GET", $"/v1/reservations?poolId={Pool}%00", null, "poolId" },
        { "tenant", "GET", $"/v1/offerings?poolId=x%00&gpuCount=8&durationHours=4", null, "poolId" },
        { "tenant", "POST", "/v1/reservations", """{"poolId":"a\u0000b","gpuCount":8,"durationHours":4}""", "poolId" },
        { "operator", "GET", "/v1/admin/nodes?poolId=a%00b", null, "poolId" },
        { "operator", "GET", "/v1/admin/nodes?state=%00", null, "state" },
        { "operator", "GET", "/v1/admin/events?type=node.failed%00", null, "type" },
        { "operator", "GET", "/v1/admin/revenue?poolId=%00", null, "poolId" },
        { "operator", "GET", "/v1/admin/utilization?poolId=%00", null, "poolId" },
        { "operator", "POST", "/v1/admin/tenants", """{"name":"nul\u0000name"}""", "name" },
        { "operator", "POST", "/v1/admin/nodes", $$"""{"poolId":"{{Pool}}","fabricIsland":"isl\u0000and","nodeCount":1}""", "fabricIsland" },
        { "operator", "POST", "/v1/admin/nodes", """{"poolId":"p\u0000","fabricIsland":"x","nodeCount":1}""", "poolId" },
        { "operator", "POST", "/v1/admin/nodes/1/maintenance",
            """{"startAt":"2030-01-01T00:00:00Z","endAt":"2030-01-02T00:00:00Z","reason":"\u0000"}""", "reason" },
    };

    [Theory]
    [MemberData(nameof(TextWithNul))]
    public async Task A_nul_character_in_any_text_is_a_400_naming_the_field_and_changes_nothing(string caller, string method, string path, string? body,
        string field)
    {
        using var client = await ClientAsync(caller);
        var before = await DatabaseSnapshot.TakeAsync(api);
        var answer = method == "GET" ? await client.GetAsync(path) : await PostJsonAsync(client, path, body!, idempotencyKey: Guid.NewGuid().ToString());
        var problem = await answer.AssertProblemAsync(HttpStatusCode.BadRequest, Problems.ValidationFailedType);
        Assert.True(problem.GetProperty("errors").TryGetProperty(field, out _), problem.ToString());
        Assert.Empty(DatabaseSnapshot.Changed(before, await DatabaseSnapshot.TakeAsync(api)));
    }

    [Fact]
    public async Task A_nul_character_in_a_new_api_keys_name_is_a_400_and_creates_no_key()
    {
        var tenant = await api.CreateTenantAsync();
        using var client = api.OperatorClient();
        var before = await DatabaseSnapshot.TakeAsync(api);
        var problem = await (await PostJsonAsync(client, $"/v1/admin/tenants/{tenant.Id}/api-keys", """{"name":"k\u0000"}"""))
            .AssertProblemAsync(HttpStatusCode.BadRequest, Problems.ValidationFailedType);
        Assert.True(problem.GetProperty("errors").TryGetProperty("name", out _));
        Assert.Empty(DatabaseSnapshot.Changed(before, await DatabaseSnapshot.TakeAsync(api)));
    }

    [Theory]
    [InlineData("tenant", "/v1/pools/{pool}/availability?to=+365d&stepMinutes=3")]
    [InlineData("tenant", "/v1/pools/{pool}/availability?from=+1d&stepMinutes=1")]
    [InlineData("operator", "/v1/admin/utilization?poolId={pool}&to=+365d&stepMinutes=3")]
    [InlineData("operator", "/v1/admin/utilization?poolId={pool}&from=+1d&stepMinutes=1")]
    public async Task Every_time_series_caps_its_steps_whichever_parameters_are_given(string caller, string template)
    {
        using var client = await ClientAsync(caller);
        var path = template.Replace("{pool}", Pool)
            .Replace("+365d", DateTimeOffset.UtcNow.AddDays(365).ToString("yyyy-MM-ddTHH:mm:ssZ"))
            .Replace("+1d", DateTimeOffset.UtcNow.AddDays(1).ToString("yyyy-MM-ddTHH:mm:ssZ"));
        var problem = await (await client.GetAsync(path)).AssertProblemAsync(HttpStatusCode.BadRequest, Problems.ValidationFailedType);
        Assert.True(problem.GetProperty("errors").TryGetProperty("stepMinutes", out _), problem.ToString());
    }

    [Fact]
    public async Task A_tenant_list_page_token_this_api_did_not_issue_is_a_400()
    {
        using var client = api.OperatorClient();
        // Well-formed base64url of the token's version prefix with a key that is no tenant id, and plain garbage.
        var forged = Convert.ToBase64String(Encoding.UTF8.GetBytes("v1:not-a-tenant")).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        foreach (var token in new[] { forged, "garbage!", "%%%" })
        {
            var problem = await (await client.GetAsync($"/v1/admin/tenants?pageToken={Uri.EscapeDataString(token)}"))
                .AssertProblemAsync(HttpStatusCode.BadRequest, Problems.ValidationFailedType);
            Assert.True(problem.GetProperty("errors").TryGetProperty("pageToken", out _));
        }
    }

    [Theory]
    [InlineData("PUT", "/v1/admin/tenants/{tenant}/quotas/{pool}", "{}", "maxConcurrentGpus")]
    [InlineData("PUT", "/v1/admin/tenants/{tenant}/fair-share", "{}", "weight")]
    [InlineData("POST", "/v1/admin/tenants", "{}", "name")]
    [InlineData("POST", "/v1/admin/nodes", """{"poolId":"{pool}","fabricIsland":"x"}""", "nodeCount")]
    public async Task A_missing_required_field_is_a_400_naming_it_and_changes_nothing(string method, string template, string body, string field)
    {
        var tenant = await api.CreateTenantAsync();
        using var client = api.OperatorClient();
        var before = await DatabaseSnapshot.TakeAsync(api);
        var request = new HttpRequestMessage(new HttpMethod(method), template.Replace("{tenant}", tenant.Id).Replace("{pool}", Pool))
        {
            Content = new StringContent(body.Replace("{pool}", Pool), Encoding.UTF8, "application/json"),
        };
        var problem = await (await client.SendAsync(request)).AssertProblemAsync(HttpStatusCode.BadRequest, Problems.ValidationFailedType);
        Assert.True(problem.GetProperty("errors").TryGetProperty(field, out _), problem.ToString());
        Assert.Empty(DatabaseSnapshot.Changed(before, await DatabaseSnapshot.TakeAsync(api)));
    }

    [Fact]
    public async Task A_pool_edit_that_changes_nothing_with_a_stale_etag_is_412_and_writes_no_event()
    {
        using var client = api.OperatorClient();
        var pool = Fleet(1);
        var read = await client.GetAsync($"/v1/pools/{pool}");
        var etag = read.Headers.ETag!.Tag;
        var current = (await read.Content.ReadFromJsonAsync<PoolResponse>(Json.Options))!;
        var body = new { rules = current.Rules, prices = new { current.Prices.OnDemand, current.Prices.Reserved, current.Prices.Spot, current.Prices.Internal } };
        var before = await DatabaseSnapshot.TakeAsync(api);

        foreach (var stale in new[] { "\"1\"", "\"999999\"", "W/\"0\"" })
        {
            var edit = new HttpRequestMessage(HttpMethod.Put, $"/v1/admin/pools/{pool}") { Content = JsonContent.Create(body, options: Json.Options) };
            edit.Headers.IfMatch.Add(EntityTagHeaderValue.Parse(stale));
            await (await client.SendAsync(edit)).AssertProblemAsync(HttpStatusCode.PreconditionFailed, Problems.PreconditionFailedType);
        }

        // The same body with the current ETag: answered, and nothing written, not even an audit event.
        var same = new HttpRequestMessage(HttpMethod.Put, $"/v1/admin/pools/{pool}") { Content = JsonContent.Create(body, options: Json.Options) };
        same.Headers.IfMatch.Add(EntityTagHeaderValue.Parse(etag));
        var answer = await client.SendAsync(same);
        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        Assert.Equal(etag, answer.Headers.ETag!.Tag);
        Assert.Empty(DatabaseSnapshot.Changed(before, await DatabaseSnapshot.TakeAsync(api)));
    }

    [Fact]
    public async Task Concurrent_deletes_of_one_maintenance_window_answer_204_once_and_404_after()
    {
        using var client = api.OperatorClient();
        var node = ApiFactory.Inventory.Nodes.Where(n => n.PoolId == Fleet(2)).Skip(3).First().Id;
        var start = DateTimeOffset.UtcNow.AddDays(20);
        for (var round = 0; round < 3; round++)
        {
            var created = await client.PostAsJsonAsync($"/v1/admin/nodes/{node}/maintenance",
                new { startAt = start.AddDays(round), endAt = start.AddDays(round).AddHours(2), reason = "firmware", force = true });
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
            var window = created.Headers.Location!.ToString();

            var answers = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => client.DeleteAsync(window)));
            Assert.Equal(1, answers.Count(a => a.StatusCode == HttpStatusCode.NoContent));
            foreach (var notFound in answers.Where(a => a.StatusCode != HttpStatusCode.NoContent))
            {
                await notFound.AssertProblemAsync(HttpStatusCode.NotFound, Problems.NotFoundType);
            }
        }

        Assert.Equal(3L, await api.ScalarAsync<long>("SELECT count(*) FROM events WHERE type = 'node.maintenance_cancelled' AND data->>'nodeId' = $1",
            node.ToString()));
    }

    private static string Fleet(int index) => ApiFactory.Inventory.Pools[index % ApiFactory.Inventory.Pools.Count].Id;

    private async Task<HttpClient> ClientAsync(string caller) =>
        caller == "operator" ? api.OperatorClient() : await api.ClientWithoutQuotaLimitAsync(Data.TenantKind.External, Pool);

    private static Task<HttpResponseMessage> PostJsonAsync(HttpClient client, string path, string body, string? idempotencyKey = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        if (idempotencyKey is not null)
        {
            request.Headers.Add("Idempotency-Key", idempotencyKey);
        }

        return client.SendAsync(request);
    }
}
