using MetaCompute.Scheduling;
using Microsoft.EntityFrameworkCore;
using Npgsql;

namespace MetaCompute.Api.Scheduling;

/// <summary>
/// The raw SQL behind allocation changes, as commands the pool's decider sends in one round trip for its whole batch,
/// after the statements that write the batch's reservations and leases. Each change writes the allocation rows (the
/// exclusion constraint checks them) and appends the lease's new hold to the pool's change log. The caller applies the
/// same hold to the pool's index when it decides, so later decisions of the batch see it. The pool's lock is held, so
/// the change log's max(version) + 1 cannot race; its primary key would refuse a duplicate.
/// </summary>
public static class AllocationWriter
{
    public static IReadOnlyList<NpgsqlBatchCommand> Insert(string poolId, Guid leaseId, DateTimeOffset start, DateTimeOffset end,
        IReadOnlyList<NodeGpus> gpus, DateTimeOffset now)
    {
        var gpuIds = new List<long>();
        var gpuNodes = new List<int>();
        foreach (var node in gpus)
        {
            foreach (var gpuIndex in node.Indices())
            {
                gpuIds.Add((long)node.NodeId * PoolOccupancy.GpusPerNode + gpuIndex);
                gpuNodes.Add(node.NodeId);
            }
        }

        return
        [
            Command("""
                INSERT INTO allocations (lease_id, gpu_id, node_id, period)
                SELECT $1, g, n, tstzrange($2, $3, '[)') FROM unnest($4::bigint[], $5::int[]) AS t(g, n)
                """, leaseId, start, end, gpuIds.ToArray(), gpuNodes.ToArray()),
            Change(poolId, leaseId, start, end, gpus, now),
        ];
    }

    /// <summary>Moves the end of every allocation of the lease (an extension, or a cancellation after the start).</summary>
    public static IReadOnlyList<NpgsqlBatchCommand> SetEnd(string poolId, LeaseHold hold, DateTimeOffset newEnd, DateTimeOffset now) =>
    [
        Command("UPDATE allocations SET period = tstzrange(lower(period), $2, '[)') WHERE lease_id = $1", hold.LeaseId, newEnd),
        Change(poolId, hold.LeaseId, hold.Start, newEnd, hold.Gpus, now),
    ];

    /// <summary>Releases every allocation of the lease (a cancellation before the start): an empty hold in the log.</summary>
    public static IReadOnlyList<NpgsqlBatchCommand> Delete(string poolId, Guid leaseId, DateTimeOffset now) =>
    [
        Command("DELETE FROM allocations WHERE lease_id = $1", leaseId),
        Change(poolId, leaseId, now, now, [], now),
    ];

    /// <summary>
    /// Appends a hold that has no allocation rows (a maintenance window; an empty one takes it back) to the pool's
    /// change log at once, so every replica's index learns it.
    /// </summary>
    public static async Task AppendHoldAsync(Data.MetaComputeDbContext db, string poolId, Guid holdId, DateTimeOffset start, DateTimeOffset end,
        IReadOnlyList<NodeGpus> gpus, DateTimeOffset now, CancellationToken ct)
    {
        await using var command = ((NpgsqlConnection)db.Database.GetDbConnection()).CreateCommand();
        var change = Change(poolId, holdId, start, end, gpus, now);
        command.CommandText = change.CommandText;
        command.Parameters.AddRange(change.Parameters.Select(p => new NpgsqlParameter { Value = p.Value }).ToArray());
        await command.ExecuteNonQueryAsync(ct);
    }

    private static NpgsqlBatchCommand Change(string poolId, Guid leaseId, DateTimeOffset start, DateTimeOffset end, IReadOnlyList<NodeGpus> gpus,
        DateTimeOffset now) =>
        Command("""
            INSERT INTO pool_changes (pool_id, version, lease_id, start_at, end_at, node_ids, gpu_masks, created_at)
            SELECT $1, coalesce(max(version), 0) + 1, $2, $3, $4, $5, $6, $7 FROM pool_changes WHERE pool_id = $1
            """, poolId, leaseId, start, end, gpus.Select(g => g.NodeId).ToArray(), gpus.Select(g => (short)g.Mask).ToArray(), now);

    /// <summary>A batch command with positional parameters ($1, $2, ...) in the order given.</summary>
    internal static NpgsqlBatchCommand Command(string sql, params object[] values)
    {
        var command = new NpgsqlBatchCommand(sql);
        foreach (var value in values)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = value });
        }

        return command;
    }
}
