using MetaCompute.Api.Data;
using MetaCompute.Api.Events;
using MetaCompute.Scheduling;
using Microsoft.EntityFrameworkCore;

namespace MetaCompute.Api.Scheduling;

/// <summary>
/// When a node fails, every lease with GPUs on it that has not ended moves those GPUs to spare ones — same fabric
/// island first, then the same pool — for the rest of its period; each move is a <c>lease.migrated</c> event. A lease
/// that cannot move is marked degraded with a <c>lease.degraded</c> event. Runs under the pool's lock, in the
/// caller's transaction. Spare GPUs may include the holdback: these are commitments already sold.
/// </summary>
public static class FailureRehoming
{
    public static async Task<(int Migrated, int Degraded)> RehomeAsync(MetaComputeDbContext db, PoolOccupancy index, string poolId, int failedNodeId,
        DateTimeOffset now, CancellationToken ct)
    {
        var holds = index.LeasesOn(failedNodeId).Where(h => h.End > now).ToList();
        var leaseIds = holds.Select(h => h.LeaseId).ToList();
        var leases = await db.Leases.Where(l => leaseIds.Contains(l.Id))
            .Join(db.Reservations, l => l.ReservationId, r => r.Id, (l, r) => new { Lease = l, r.TenantId, ReservationId = r.Id })
            .ToDictionaryAsync(x => x.Lease.Id, ct);
        int migrated = 0, degraded = 0;
        foreach (var hold in holds)
        {
            var owner = leases[hold.LeaseId];
            var lost = hold.Gpus.Single(g => g.NodeId == failedNodeId);
            if (Allocator.Rehome(index, hold, failedNodeId, now) is not { } replacement)
            {
                owner.Lease.DegradedSince ??= now;
                db.Append(EventTypes.LeaseDegraded, owner.TenantId, owner.ReservationId, now, new
                {
                    leaseId = hold.LeaseId, nodeId = failedNodeId, gpuCount = lost.Count, reason = "no spare GPUs for the rest of the lease",
                });
                degraded++;
                continue;
            }

            // History stays true: the failed node's rows end now (or vanish if the lease had not started).
            var from = hold.Start > now ? hold.Start : now;
            var gpuIds = replacement.Indices().Select(i => (long)replacement.NodeId * PoolOccupancy.GpusPerNode + i).ToArray();
            var moved = hold with { Gpus = hold.Gpus.Select(g => g.NodeId == failedNodeId ? replacement : g).ToList() };
            var nodeIds = moved.Gpus.Select(g => g.NodeId).ToArray();
            var masks = moved.Gpus.Select(g => (short)g.Mask).ToArray();
            await db.Database.ExecuteSqlAsync($"""
                DELETE FROM allocations WHERE lease_id = {hold.LeaseId} AND node_id = {failedNodeId} AND lower(period) >= {now};
                UPDATE allocations SET period = tstzrange(lower(period), {now}, '[)')
                  WHERE lease_id = {hold.LeaseId} AND node_id = {failedNodeId} AND upper(period) > {now};
                INSERT INTO allocations (lease_id, gpu_id, node_id, period)
                  SELECT {hold.LeaseId}, g, {replacement.NodeId}, tstzrange({from}, {hold.End}, '[)') FROM unnest({gpuIds}::bigint[]) AS t(g);
                INSERT INTO pool_changes (pool_id, version, lease_id, start_at, end_at, node_ids, gpu_masks, created_at)
                  SELECT {poolId}, coalesce(max(version), 0) + 1, {hold.LeaseId}, {hold.Start}, {hold.End}, {nodeIds}, {masks}, {now}
                  FROM pool_changes WHERE pool_id = {poolId};
                """, ct);
            index.SetLease(moved);
            db.Append(EventTypes.LeaseMigrated, owner.TenantId, owner.ReservationId, now, new
            {
                leaseId = hold.LeaseId,
                fromNodeId = failedNodeId,
                fromGpuIndices = lost.Indices(),
                toNodeId = replacement.NodeId,
                toGpuIndices = replacement.Indices(),
                sameFabricIsland = index.IslandOf(replacement.NodeId) == index.IslandOf(failedNodeId),
                at = from,
            });
            migrated++;
        }

        return (migrated, degraded);
    }
}
