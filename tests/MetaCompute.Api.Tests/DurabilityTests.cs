using System.Net;
using MetaCompute.Api.Infrastructure;
using MetaCompute.Api.Tests.Infrastructure;
using Npgsql;

namespace MetaCompute.Api.Tests;

/// <summary>
/// Nothing acknowledged may be lost: a booking and a cancellation answered just before PostgreSQL crashes are both
/// there after it recovers. The shared test server runs without fsync, so this test starts a durable server of its own.
/// </summary>
public sealed class DurabilityTests : IAsyncLifetime
{
    // The WAL writer flushes by itself only every 10 s here, so within the test only the service's own flush can make
    // an answered change durable; a batch answered on an asynchronous commit alone would be lost to the crash.
    private static readonly string[] Settings = ["wal_writer_delay=10000", "wal_writer_flush_after=1GB", "autovacuum=off"];

    private readonly string _directory = Path.Combine(Path.GetTempPath(), "metacompute-durability-" + Guid.NewGuid().ToString("N")[..8]);
    private EmbeddedPostgres? _server;

    public async Task InitializeAsync() => _server = await EmbeddedPostgres.StartAsync(_directory, Settings);

    public async Task DisposeAsync()
    {
        await _server!.StopAsync();
        Directory.Delete(_directory, recursive: true);
    }

    [Fact]
    public async Task A_booking_and_its_cancellation_answered_before_a_crash_survive_it()
    {
        Guid reservationId;
        string booked;
        await using (var app = new ApiFactory.Replica(ConnectionString()))
        {
            using var operatorClient = app.CreateClient();
            operatorClient.DefaultRequestHeaders.Authorization = new("Bearer", ApiFactory.OperatorKey);
            var tenant = await ApiFactory.CreateTenantAsync(operatorClient);
            using var client = app.CreateClient();
            client.DefaultRequestHeaders.Authorization = new("Bearer", tenant.ApiKey);

            var booking = await client.ReserveAsync(new { poolId = "us-ohio-1-h100", gpuCount = 8, durationHours = 1 }, key: "survives");
            booked = await booking.Content.ReadAsStringAsync();
            Assert.Equal(HttpStatusCode.Created, booking.StatusCode);
            reservationId = Guid.Parse((await booking.ReadReservationAsync()).Id);
            var cancellation = await client.PostIdempotentAsync($"/v1/reservations/{reservationId}/cancel", null, key: "cancelled");
            Assert.Equal(HttpStatusCode.OK, cancellation.StatusCode);

            await _server!.CrashAsync();
        }

        _server = await EmbeddedPostgres.StartAsync(_directory, Settings);
        await using var connection = new NpgsqlConnection(ConnectionString());
        await connection.OpenAsync();
        Assert.Equal("Cancelled", await ScalarAsync<string>(connection, "SELECT status FROM reservations WHERE id = $1", reservationId));
        Assert.Equal(8L, await ScalarAsync<long>(connection,
            "SELECT count(*) FROM allocations a JOIN leases l ON l.id = a.lease_id WHERE l.reservation_id = $1", reservationId));
        Assert.Equal(booked, await ScalarAsync<string>(connection, "SELECT response_body FROM idempotency_keys WHERE key = $1", "survives"));
        Assert.Equal(1L, await ScalarAsync<long>(connection, "SELECT count(*) FROM idempotency_keys WHERE key = $1", "cancelled"));
        Assert.Equal(2L, await ScalarAsync<long>(connection, "SELECT count(*) FROM events WHERE reservation_id = $1", reservationId));
    }

    private string ConnectionString() => TestDatabaseServer.WithDatabase(_server!.ConnectionString(), "metacompute_durability");

    private static async Task<T> ScalarAsync<T>(NpgsqlConnection connection, string sql, object parameter)
    {
        await using var command = new NpgsqlCommand(sql, connection) { Parameters = { new NpgsqlParameter { Value = parameter } } };
        return (T)(await command.ExecuteScalarAsync())!;
    }
}
