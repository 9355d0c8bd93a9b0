using MetaCompute.Api.Scheduling;
using MetaCompute.Api.Tests.Infrastructure;
using MetaCompute.Scheduling;
using Npgsql;

namespace MetaCompute.Api.Tests;

/// <summary>A batch's allocation writes as a few statements: the same rows and change log as writing them one by one.</summary>
public sealed class AllocationWriterTests(ApiFactory api) : IClassFixture<ApiFactory>
{
    private const string Pool = "us-ohio-1-h100";

    [Fact]
    public async Task A_release_runs_before_a_new_hold_on_the_gpus_it_frees_whatever_the_order_given()
    {
        var (freed, holder) = (await BookAsync(), await BookAsync());
        await ExecuteAsync(AllocationWriter.Commands(Pool, [AllocationWriter.Delete(holder.LeaseId, DateTimeOffset.UtcNow)]));
        var cut = freed.Start.AddMinutes(10);
        var moved = AllocationWriter.Insert(holder.LeaseId, cut, cut.AddHours(1), freed.Gpus, DateTimeOffset.UtcNow);

        // On its own, the new hold overlaps the GPUs' current lease: the exclusion constraint refuses it.
        var refused = await Assert.ThrowsAsync<PostgresException>(() => ExecuteAsync(AllocationWriter.Commands(Pool, [moved])));
        Assert.Equal(PostgresErrorCodes.ExclusionViolation, refused.SqlState);

        var versionBefore = await api.ScalarAsync<long>("SELECT max(version) FROM pool_changes WHERE pool_id = $1", Pool);
        await ExecuteAsync(AllocationWriter.Commands(Pool, [moved, AllocationWriter.SetEnd(freed, cut, DateTimeOffset.UtcNow)]));

        Assert.Equal(Show(freed with { End = cut }), Show(await HoldOfAsync(freed.LeaseId)));
        Assert.Equal(Show(new LeaseHold(holder.LeaseId, cut, cut.AddHours(1), freed.Gpus)), Show(await HoldOfAsync(holder.LeaseId)));
        // The log has both holds, in the order given, at the next versions.
        Assert.Equal(
            [(versionBefore + 1, holder.LeaseId, cut.AddHours(1), Mask(freed)), (versionBefore + 2, freed.LeaseId, cut, Mask(freed))],
            await ChangesAfterAsync(versionBefore));
    }

    [Fact]
    public async Task A_lease_written_twice_keeps_its_order_and_a_deletion_logs_an_empty_hold()
    {
        var (twice, gone) = (await BookAsync(), await BookAsync());
        // PostgreSQL keeps microseconds.
        var now = DateTimeOffset.UtcNow;
        now = now.AddTicks(-(now.UtcTicks % 10));
        var extended = twice with { End = twice.End.AddHours(1) };
        var cancelledAt = twice.Start.AddMinutes(5);
        var versionBefore = await api.ScalarAsync<long>("SELECT max(version) FROM pool_changes WHERE pool_id = $1", Pool);

        await ExecuteAsync(AllocationWriter.Commands(Pool,
        [
            AllocationWriter.SetEnd(twice, extended.End, now), AllocationWriter.SetEnd(extended, cancelledAt, now),
            AllocationWriter.Delete(gone.LeaseId, now),
        ]));

        Assert.Equal(Show(twice with { End = cancelledAt }), Show(await HoldOfAsync(twice.LeaseId)));
        Assert.Equal(0L, await api.ScalarAsync<long>("SELECT count(*) FROM allocations WHERE lease_id = $1", gone.LeaseId));
        Assert.Equal(
            [
                (versionBefore + 1, twice.LeaseId, extended.End, Mask(twice)),
                (versionBefore + 2, twice.LeaseId, cancelledAt, Mask(twice)),
                (versionBefore + 3, gone.LeaseId, now, ""),
            ],
            await ChangesAfterAsync(versionBefore));
    }

    [Fact]
    public async Task Parameter_rows_pair_the_arrays_elements_by_index_nulls_included()
    {
        await using var connection = await api.OpenConnectionAsync();
        await using var command = new NpgsqlCommand($"SELECT n, t, ord FROM {AllocationWriter.ParameterRows("int", "text")} AS r(n, t, ord)", connection)
        {
            Parameters = { new() { Value = new[] { 30, 10, 20 } }, new() { Value = new[] { "c", null, "b" } } },
        };
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<(int, string?, int)>();
        while (await reader.ReadAsync())
        {
            rows.Add((reader.GetInt32(0), reader.IsDBNull(1) ? null : reader.GetString(1), reader.GetInt32(2)));
        }

        Assert.Equal([(30, "c", 1), (10, null, 2), (20, "b", 3)], rows);
    }

    private async Task<LeaseHold> BookAsync()
    {
        using var client = await api.ClientWithoutQuotaLimitAsync(Data.TenantKind.External, Pool);
        var booked = await (await client.ReserveAsync(new { poolId = Pool, gpuCount = 1, durationHours = 1 })).ReadReservationAsync();
        return await HoldOfAsync(Guid.Parse(booked.Lease!.Id));
    }

    /// <summary>The lease's hold as its allocation rows say.</summary>
    private async Task<LeaseHold> HoldOfAsync(Guid leaseId)
    {
        await using var connection = await api.OpenConnectionAsync();
        await using var command = new NpgsqlCommand("""
            SELECT node_id, bit_or(1 << (gpu_id % 8)::int)::int, min(lower(period)), max(upper(period))
            FROM allocations WHERE lease_id = $1 GROUP BY node_id ORDER BY node_id
            """, connection) { Parameters = { new() { Value = leaseId } } };
        await using var reader = await command.ExecuteReaderAsync();
        var (gpus, start, end) = (new List<NodeGpus>(), DateTimeOffset.MaxValue, DateTimeOffset.MinValue);
        while (await reader.ReadAsync())
        {
            gpus.Add(new NodeGpus(reader.GetInt32(0), (byte)reader.GetInt32(1)));
            start = reader.GetFieldValue<DateTimeOffset>(2) < start ? reader.GetFieldValue<DateTimeOffset>(2) : start;
            end = reader.GetFieldValue<DateTimeOffset>(3) > end ? reader.GetFieldValue<DateTimeOffset>(3) : end;
        }

        return new LeaseHold(leaseId, start, end, gpus);
    }

    /// <summary>Each change after the version: its version, lease, end and nodes with masks ("node:mask,...").</summary>
    private async Task<List<(long, Guid, DateTimeOffset, string)>> ChangesAfterAsync(long version)
    {
        await using var connection = await api.OpenConnectionAsync();
        await using var command = new NpgsqlCommand("""
            SELECT version, lease_id, end_at, node_ids, gpu_masks FROM pool_changes WHERE pool_id = $1 AND version > $2 ORDER BY version
            """, connection) { Parameters = { new() { Value = Pool }, new() { Value = version } } };
        await using var reader = await command.ExecuteReaderAsync();
        var changes = new List<(long, Guid, DateTimeOffset, string)>();
        while (await reader.ReadAsync())
        {
            var nodes = reader.GetFieldValue<int[]>(3).Zip(reader.GetFieldValue<short[]>(4), (node, mask) => $"{node}:{mask}");
            changes.Add((reader.GetInt64(0), reader.GetGuid(1), reader.GetFieldValue<DateTimeOffset>(2), string.Join(',', nodes)));
        }

        return changes;
    }

    private static string Show(LeaseHold hold) => $"{hold.LeaseId} {hold.Start:O} {hold.End:O} {Mask(hold)}";

    private static string Mask(LeaseHold hold) => string.Join(',', hold.Gpus.Select(g => $"{g.NodeId}:{g.Mask}"));

    /// <summary>Runs the commands in one transaction under the pool's lock, as the decider does.</summary>
    private async Task ExecuteAsync(IReadOnlyList<NpgsqlBatchCommand> commands)
    {
        await using var connection = await api.OpenConnectionAsync();
        await using var tx = await connection.BeginTransactionAsync();
        await using var batch = new NpgsqlBatch(connection, tx)
        {
            BatchCommands =
            {
                new NpgsqlBatchCommand("SELECT pg_advisory_xact_lock($1)") { Parameters = { new() { Value = PoolOccupancyCache.PoolLockKey(Pool) } } },
            },
        };
        foreach (var command in commands)
        {
            batch.BatchCommands.Add(command);
        }

        await batch.ExecuteNonQueryAsync();
        await tx.CommitAsync();
    }
}
