using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using MetaCompute.Api.Infrastructure;
using MetaCompute.Api.Tests.Infrastructure;
using Npgsql;
using Xunit.Abstractions;

namespace MetaCompute.Api.Tests;

/// <summary>
/// Faults of the database under load: backends terminated (57P01) and a restart (57P01, then refused connections and
/// 57P03). Every answer is a success or a 503 problem with Retry-After, never a 500, and everything acknowledged is
/// there afterwards. These tests stop and restart their server, so they run one of their own.
/// </summary>
public sealed class DatabaseFaultTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const string Pool = "us-ohio-1-h100";
    private static readonly TimeSpan LoadTime = TimeSpan.FromSeconds(4);

    private readonly string _directory = Path.Combine(Path.GetTempPath(), "metacompute-faults-" + Guid.NewGuid().ToString("N")[..8]);
    private EmbeddedPostgres? _server;

    public async Task InitializeAsync() => _server = await EmbeddedPostgres.StartAsync(_directory, ["fsync=off", "synchronous_commit=off"]);

    public async Task DisposeAsync()
    {
        await _server!.StopAsync();
        Directory.Delete(_directory, recursive: true);
    }

    [Fact]
    public async Task Terminated_backends_under_load_answer_success_or_503_with_retry_after_and_lose_nothing_acknowledged()
    {
        var answers = await RunLoadAsync(async (connection, answered, stop) =>
        {
            while (!stop.IsCancellationRequested)
            {
                // Each kill waits for a few answers since the last, so the load always gets on between two.
                await answered(4);
                await using var kill = new NpgsqlCommand(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
                    connection);
                await kill.ExecuteScalarAsync();
            }
        });

        // Retried inside the service, most requests still succeed though every connection dies five times a second.
        Assert.True(answers.Count(a => a.Status < 300) > answers.Count * 2 / 3, Summary(answers));
    }

    [Fact]
    public async Task A_database_restart_under_load_answers_success_or_503_with_retry_after_and_loses_nothing_acknowledged()
    {
        DateTime startedBefore = default;
        var answers = await RunLoadAsync(async (connection, answered, stop) =>
        {
            startedBefore = await StartTimeAsync(connection);
            // Mid-load: once the clients have been answered a while.
            await answered(40);
            await _server!.RestartAsync();
        });

        await using var connection = new NpgsqlConnection(_server!.ConnectionString());
        await connection.OpenAsync();
        Assert.True(await StartTimeAsync(connection) > startedBefore, "the server did not restart during the load");
        Assert.Contains(answers, a => a.Status < 300 && a.At > answers.Min(x => x.At).AddSeconds(3));
    }

    private sealed record Answer(string What, int Status, DateTimeOffset At, string? ReservationId);

    /// <summary>
    /// Four clients book, cancel and read for <see cref="LoadTime"/> while <paramref name="fault"/> runs; then checks every
    /// answer and the tables.
    /// </summary>
    /// <param name="fault">Given a way to wait until the clients have had so many more answers.</param>
    private async Task<List<Answer>> RunLoadAsync(Func<NpgsqlConnection, Func<int, Task>, CancellationToken, Task> fault)
    {
        var connectionString = TestDatabaseServer.WithDatabase(_server!.ConnectionString(), "metacompute_faults");
        await using var app = new ApiFactory.Replica(connectionString);
        using var operatorClient = app.CreateClient();
        operatorClient.DefaultRequestHeaders.Authorization = new("Bearer", ApiFactory.OperatorKey);
        var tenant = await ApiFactory.CreateTenantAsync(operatorClient);
        (await operatorClient.PutAsJsonAsync($"/v1/admin/tenants/{tenant.Id}/quotas/{Pool}", new { maxConcurrentGpus = 100_000 })).EnsureSuccessStatusCode();

        var answers = new ConcurrentBag<Answer>();
        var failures = new ConcurrentBag<string>();
        using var stop = new CancellationTokenSource(LoadTime);
        async Task Record(string what, HttpResponseMessage response, string? reservationId = null)
        {
            var status = (int)response.StatusCode;
            answers.Add(new Answer(what, status, DateTimeOffset.UtcNow, reservationId));
            if (status == 503)
            {
                if (response.Headers.RetryAfter is null || response.Content.Headers.ContentType?.MediaType != "application/problem+json")
                {
                    failures.Add($"{what}: 503 without Retry-After or problem+json");
                }
            }
            else if (status >= 300 && !(what == "book" && status == 409))
            {
                failures.Add($"{what}: {status} {await response.Content.ReadAsStringAsync()}");
            }
        }

        var clients = Enumerable.Range(0, 4).Select(async _ =>
        {
            using var client = app.CreateClient();
            client.DefaultRequestHeaders.Authorization = new("Bearer", tenant.ApiKey);
            while (!stop.IsCancellationRequested)
            {
                var booking = await client.ReserveAsync(new { poolId = Pool, gpuCount = 8, durationHours = 1 });
                string? id = null;
                if (booking.StatusCode == HttpStatusCode.Created)
                {
                    id = (await booking.ReadReservationAsync()).Id;
                }

                await Record("book", booking, id);
                await Record("list", await client.GetAsync($"/v1/reservations?poolId={Pool}&limit=5"));
                if (id is not null)
                {
                    await Record("cancel", await client.PostIdempotentAsync($"/v1/reservations/{id}/cancel", null), id);
                }
            }
        }).ToList();

        await using (var faults = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false }.ConnectionString))
        {
            await faults.OpenAsync();
            try
            {
                await fault(faults, more => AnsweredAsync(answers, more, stop.Token), stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or NpgsqlException)
            {
                // The load is over, or the restart took this connection with it.
            }
        }

        await Task.WhenAll(clients);
        var all = answers.ToList();
        Assert.True(failures.IsEmpty, string.Join("\n", failures.Take(10)) + "\n" + Summary(all));

        // Nothing acknowledged is lost: every booking answered 201 is there, and every cancellation answered 200 took.
        await using var check = new NpgsqlConnection(connectionString);
        await check.OpenAsync();
        var booked = all.Where(a => a is { What: "book", Status: 201 }).Select(a => Guid.Parse(a.ReservationId!)).ToArray();
        var cancelled = all.Where(a => a is { What: "cancel", Status: 200 }).Select(a => Guid.Parse(a.ReservationId!)).ToArray();
        Assert.NotEmpty(booked);
        Assert.Equal(booked.Length, await CountAsync(check, "SELECT count(*) FROM reservations WHERE id = ANY($1)", booked));
        Assert.Equal(cancelled.Length, await CountAsync(check, "SELECT count(*) FROM reservations WHERE id = ANY($1) AND status = 'Cancelled'", cancelled));
        Assert.Equal(0L, await CountAsync(check, TenantClient.OverlapSql));
        output.WriteLine(Summary(all));
        return all;
    }

    /// <summary>Waits until <paramref name="more"/> further answers have come (or the load is over).</summary>
    private static async Task AnsweredAsync(ConcurrentBag<Answer> answers, int more, CancellationToken stop)
    {
        var target = answers.Count + more;
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(10));
        while (answers.Count < target && await timer.WaitForNextTickAsync(stop))
        {
        }
    }

    private static async Task<DateTime> StartTimeAsync(NpgsqlConnection connection)
    {
        await using var command = new NpgsqlCommand("SELECT pg_postmaster_start_time()", connection);
        return (DateTime)(await command.ExecuteScalarAsync())!;
    }

    private static async Task<long> CountAsync(NpgsqlConnection connection, string sql, params object[] parameters)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        foreach (var parameter in parameters)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = parameter });
        }

        return (long)(await command.ExecuteScalarAsync())!;
    }

    private static string Summary(List<Answer> answers) =>
        string.Join(", ", answers.GroupBy(a => (a.What, a.Status)).OrderBy(g => g.Key).Select(g => $"{g.Key.What} {g.Key.Status}: {g.Count()}"));
}
