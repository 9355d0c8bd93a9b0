using MetaCompute.Scheduling;
using Microsoft.EntityFrameworkCore;
using MetaCompute.Api.Data;

namespace MetaCompute.Api.Scheduling;

/// <summary>
/// The raw SQL behind allocation changes. Each one writes the allocation rows (the exclusion constraint checks them),
/// appends the lease's new hold to the pool's change log, in the caller's transaction and under the pool's lock, and
/// applies the hold to the pool's index so the next decision of the same batch sees it.
/// </summary>
public static class AllocationWriter
{
    public static async Task InsertAsync(MetaComputeDbContext db, PoolOccupancy index, string poolId, Guid leaseId, DateTimeOffset start, DateTimeOffset end,
        IReadOnlyList<NodeGpus> gpus, DateTimeOffset now, CancellationToken ct)
    {
        var gpuIds = new List<long>();
        var nodeIds = new List<int>();
        foreach (var node in gpus)
        {
            foreach (var gpuIndex in node.Indices())
            {
                gpuIds.Add((long)node.NodeId * PoolOccupancy.GpusPerNode + gpuIndex);
                nodeIds.Add(node.NodeId);
            }
        }

        await db.Database.ExecuteSqlAsync($"""
            INSERT INTO allocations (lease_id, gpu_id, node_id, period)
            SELECT {leaseId}, g, n, tstzrange({start}, {end}, '[)')
            FROM unnest({gpuIds.ToArray()}::bigint[], {nodeIds.ToArray()}::int[]) AS t(g, n)
            """, ct);
        await AppendChangeAsync(db, poolId, leaseId, start, end, gpus, now, ct);
        index.SetLease(new LeaseHold(leaseId, start, end, gpus));
    }

    /// <summary>Moves the end of every allocation of the lease (an extension, or a cancellation after the start).</summary>
    public static async Task SetEndAsync(MetaComputeDbContext db, PoolOccupancy index, string poolId, LeaseHold hold, DateTimeOffset newEnd, DateTimeOffset now,
        CancellationToken ct)
    {
        await db.Database.ExecuteSqlAsync($"""
            UPDATE allocations SET period = tstzrange(lower(period), {newEnd}, '[)') WHERE lease_id = {hold.LeaseId}
            """, ct);
        await AppendChangeAsync(db, poolId, hold.LeaseId, hold.Start, newEnd, hold.Gpus, now, ct);
        index.SetLease(hold with { End = newEnd });
    }

    /// <summary>Releases every allocation of the lease (a cancellation before the start).</summary>
    public static async Task DeleteAsync(MetaComputeDbContext db, PoolOccupancy index, string poolId, Guid leaseId, DateTimeOffset now, CancellationToken ct)
    {
        await db.Database.ExecuteSqlAsync($"DELETE FROM allocations WHERE lease_id = {leaseId}", ct);
        await AppendChangeAsync(db, poolId, leaseId, now, now, [], now, ct);
        index.RemoveLease(leaseId);
    }

    private static async Task AppendChangeAsync(MetaComputeDbContext db, string poolId, Guid leaseId, DateTimeOffset start, DateTimeOffset end,
        IReadOnlyList<NodeGpus> gpus, DateTimeOffset now, CancellationToken ct)
    {
        var nodeIds = gpus.Select(g => g.NodeId).ToArray();
        var masks = gpus.Select(g => (short)g.Mask).ToArray();
        // The pool's lock is held, so max(version) + 1 cannot race; the primary key would refuse a duplicate anyway.
        await db.Database.ExecuteSqlAsync($"""
            INSERT INTO pool_changes (pool_id, version, lease_id, start_at, end_at, node_ids, gpu_masks, created_at)
            SELECT {poolId}, coalesce(max(version), 0) + 1, {leaseId}, {start}, {end}, {nodeIds}, {masks}, {now}
            FROM pool_changes WHERE pool_id = {poolId}
            """, ct);
    }
}
