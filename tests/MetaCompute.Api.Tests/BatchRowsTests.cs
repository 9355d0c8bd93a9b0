using MetaCompute.Api.Data;
using MetaCompute.Api.Scheduling;
using MetaCompute.Api.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata;
using Npgsql;

namespace MetaCompute.Api.Tests;

/// <summary>The decider's own statements for the rows EF would otherwise save: complete, and as strict as EF's save.</summary>
public sealed class BatchRowsTests(ApiFactory api) : IClassFixture<ApiFactory>
{
    [Fact]
    public async Task The_statements_write_every_column_ef_maps()
    {
        var (reservations, leases, events, keys) = await api.WithDbAsync(db => Task.FromResult((
            Columns<Reservation>(db), Columns<Lease>(db), Columns<Event>(db), Columns<IdempotencyRecord>(db))));

        // xmin is the row version PostgreSQL sets itself; an event's id is its identity.
        Assert.Equal(reservations.Order(), BatchRows.ReservationColumns.Append("xmin").Order());
        Assert.Equal(leases.Order(), BatchRows.LeaseColumns.Order());
        Assert.Equal(events.Order(), BatchRows.EventColumns.Append("id").Order());
        Assert.Equal(keys.Order(), BatchRows.KeyColumns.Order());
    }

    [Fact]
    public async Task A_reservation_changed_since_it_was_read_fails_the_batch_as_a_serialization_failure()
    {
        var tenant = await api.CreateTenantAsync();
        using var client = api.ClientWithKey(tenant.ApiKey);
        var booked = await (await client.ReserveAsync(new { poolId = "us-ohio-1-h100", gpuCount = 1, durationHours = 1 })).ReadReservationAsync();
        var id = Guid.Parse(booked.Id);

        var failure = await api.WithDbAsync(async db =>
        {
            var reservation = await db.Reservations.SingleAsync(r => r.Id == id);
            // Someone else changes the row after this unit of work read it.
            await using (var other = await api.OpenConnectionAsync())
            await using (var touch = new NpgsqlCommand("UPDATE reservations SET updated_at = updated_at WHERE id = $1", other))
            {
                touch.Parameters.Add(new NpgsqlParameter { Value = id });
                await touch.ExecuteNonQueryAsync();
            }

            reservation.Status = ReservationStatus.Cancelled;
            db.ChangeTracker.DetectChanges();
            var (before, _) = BatchRows.Take(db);
            var connection = (NpgsqlConnection)db.Database.GetDbConnection();
            await connection.OpenAsync();
            await using var batch = new NpgsqlBatch(connection);
            foreach (var command in before)
            {
                batch.BatchCommands.Add(command);
            }

            return await Assert.ThrowsAsync<PostgresException>(() => batch.ExecuteNonQueryAsync());
        });

        Assert.Equal(PostgresErrorCodes.SerializationFailure, failure.SqlState);
        Assert.Equal("Scheduled", await api.ScalarAsync<string>("SELECT status FROM reservations WHERE id = $1", id));
    }

    [Fact]
    public async Task The_live_read_tracks_a_reservation_and_its_lease_exactly_as_ef_reads_them()
    {
        var tenant = await api.CreateTenantAsync();
        using var client = api.ClientWithKey(tenant.ApiKey);
        var booked = await (await client.ReserveAsync(new { poolId = "us-ohio-1-h100", gpuCount = 1, durationHours = 1 })).ReadReservationAsync();
        var id = Guid.Parse(booked.Id);
        // Every nullable column gets a value, so a column the hand-written reader skipped would show as a difference.
        await api.ScalarAsync<int>("""
            WITH r AS (UPDATE reservations SET cancelled_at = created_at, ending_soon_notified_at = created_at, wait_until = end_at,
                                               recall_at = end_at + interval '1 day'
                       WHERE id = $1 RETURNING id)
            UPDATE leases SET degraded_since = start_at WHERE reservation_id = (SELECT id FROM r) RETURNING 1
            """, id);

        var expected = await api.WithDbAsync(db => db.Reservations.AsNoTracking().Include(r => r.Lease).SingleAsync(r => r.Id == id));
        var (reservation, lease) = await api.WithDbAsync(async db =>
        {
            var connection = (NpgsqlConnection)db.Database.GetDbConnection();
            await connection.OpenAsync();
            await using (var batch = new NpgsqlBatch(connection)
                         {
                             BatchCommands = { Reservations.Quotas.LiveCommand("us-ohio-1-h100", [Guid.Parse(tenant.Id)], DateTimeOffset.UtcNow.AddHours(-1)) },
                         })
            await using (var reader = await batch.ExecuteReaderAsync())
            {
                await Reservations.Quotas.AttachLiveAsync(db, reader, CancellationToken.None);
            }

            var tracked = db.Reservations.Local.Single(r => r.Id == id);
            return (Values(db, tracked), Values(db, tracked.Lease!));
        });

        await api.WithDbAsync(db =>
        {
            Assert.Equal(Values(db, expected), reservation);
            Assert.Equal(Values(db, expected.Lease!), lease);
            return Task.FromResult(0);
        });
    }

    /// <summary>Every property EF maps, by name, as the unit of work holds it.</summary>
    private static Dictionary<string, object?> Values(MetaComputeDbContext db, object entity)
    {
        var type = db.Model.FindEntityType(entity.GetType())!;
        var entry = db.Entry(entity);
        return type.GetProperties().ToDictionary(p => p.Name, p => entry.Property(p.Name).CurrentValue);
    }

    private static string[] Columns<T>(MetaComputeDbContext db)
    {
        var entity = db.Model.FindEntityType(typeof(T))!;
        var table = StoreObjectIdentifier.Table(entity.GetTableName()!, entity.GetSchema());
        return entity.GetProperties().Select(p => p.GetColumnName(table)!).ToArray();
    }
}
