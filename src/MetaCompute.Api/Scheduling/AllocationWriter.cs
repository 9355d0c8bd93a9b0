using MetaCompute.Api.Data;
using MetaCompute.Scheduling;
using Microsoft.EntityFrameworkCore;

namespace MetaCompute.Api.Scheduling;

/// <summary>
/// The raw SQL behind allocation changes. Each one writes the allocation rows (the exclusion constraint checks them)
/// and appends the lease's new hold to the pool's change log in one round trip, in the caller's transaction and under
/// the pool's lock, then applies the hold to the pool's index so the next decision of the same batch sees it.
/// The pool's lock is held, so the change log's max(version) + 1 cannot race; its primary key would refuse a duplicate.
/// </summary>
public static class AllocationWriter
{
    /// <summary>
    /// Writes a new lease's allocation rows. The hold is applied to the index by the caller when it decides, since the
    /// rows can only be written once the lease row is saved, after later decisions of the batch.
    /// </summary>
    public static async Task InsertAsync(MetaComputeDbContext db, string poolId, Guid leaseId, DateTimeOffset start,
        DateTimeOffset end, IReadOnlyList<NodeGpus> gpus, DateTimeOffset now, CancellationToken ct)
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

        var (nodeIds, masks) = Columns(gpus);
        await db.Database.ExecuteSqlAsync($"""
            INSERT INTO allocations (lease_id, gpu_id, node_id, period)
            SELECT {leaseId}, g, n, tstzrange({start}, {end}, '[)')
            FROM unnest({gpuIds.ToArray()}::bigint[], {gpuNodes.ToArray()}::int[]) AS t(g, n);
            INSERT INTO pool_changes (pool_id, version, lease_id, start_at, end_at, node_ids, gpu_masks, created_at)
            SELECT {poolId}, coalesce(max(version), 0) + 1, {leaseId}, {start}, {end}, {nodeIds}, {masks}, {now}
            FROM pool_changes WHERE pool_id = {poolId};
            """, ct);
    }

    /// <summary>Moves the end of every allocation of the lease (an extension, or a cancellation after the start).</summary>
    public static async Task SetEndAsync(MetaComputeDbContext db, PoolOccupancy index, string poolId, LeaseHold hold, DateTimeOffset newEnd,
        DateTimeOffset now, CancellationToken ct)
    {
        var (nodeIds, masks) = Columns(hold.Gpus);
        await db.Database.ExecuteSqlAsync($"""
            UPDATE allocations SET period = tstzrange(lower(period), {newEnd}, '[)') WHERE lease_id = {hold.LeaseId};
            INSERT INTO pool_changes (pool_id, version, lease_id, start_at, end_at, node_ids, gpu_masks, created_at)
            SELECT {poolId}, coalesce(max(version), 0) + 1, {hold.LeaseId}, {hold.Start}, {newEnd}, {nodeIds}, {masks}, {now}
            FROM pool_changes WHERE pool_id = {poolId};
            """, ct);
        index.SetLease(hold with { End = newEnd });
    }

    /// <summary>Releases every allocation of the lease (a cancellation before the start): an empty hold in the log.</summary>
    public static async Task DeleteAsync(MetaComputeDbContext db, PoolOccupancy index, string poolId, Guid leaseId, DateTimeOffset now,
        CancellationToken ct)
    {
        await db.Database.ExecuteSqlAsync($"""
            DELETE FROM allocations WHERE lease_id = {leaseId};
            INSERT INTO pool_changes (pool_id, version, lease_id, start_at, end_at, node_ids, gpu_masks, created_at)
            SELECT {poolId}, coalesce(max(version), 0) + 1, {leaseId}, {now}, {now}, {Array.Empty<int>()}, {Array.Empty<short>()}, {now}
            FROM pool_changes WHERE pool_id = {poolId};
            """, ct);
        index.RemoveLease(leaseId);
    }

    private static (int[] NodeIds, short[] Masks) Columns(IReadOnlyList<NodeGpus> gpus) =>
        (gpus.Select(g => g.NodeId).ToArray(), gpus.Select(g => (short)g.Mask).ToArray());
}
