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
        // Holds that are not leases are maintenance windows: they have nothing to move.
        foreach (var hold in holds.Where(h => leases.ContainsKey(h.LeaseId)))
        {
            var owner = leases[hold.LeaseId];
            var lost = hold.Gpus.Single(g => g.NodeId == failedNodeId);
            if (Allocator.Rehome(index, hold, failedNodeId, now) is not { } replacement)
            {
                owner.Lease.DegradedSince ??= now;
                db.LeaseLosses.Add(new LeaseLoss { LeaseId = hold.LeaseId, NodeId = failedNodeId, GpuCount = lost.Count, Since = now });
                db.Append(EventTypes.LeaseDegraded, owner.TenantId, owner.ReservationId, now, new
                {
                    leaseId = hold.LeaseId, nodeId = failedNodeId.ToString(), gpuCount = lost.Count, reason = "no spare GPUs for the rest of the lease",
                });
                degraded++;
                continue;
            }

            await MoveAsync(db, index, poolId, hold, failedNodeId, replacement, now, owner.TenantId, owner.ReservationId, "node failed", ct);
            migrated++;
        }

        return (migrated, degraded);
    }

    /// <summary>
    /// Moves a lease's GPUs off one node onto <paramref name="replacement"/> for the rest of its period, from now (or
    /// its start, if later): the old rows end now (or vanish if not yet begun), new rows hold the replacement, the
    /// pool's log and index learn the new hold, and the tenant gets a <c>lease.migrated</c> event. Under the pool's lock.
    /// </summary>
    public static async Task MoveAsync(MetaComputeDbContext db, PoolOccupancy index, string poolId, LeaseHold hold, int fromNodeId,
        NodeGpus replacement, DateTimeOffset now, Guid tenantId, Guid reservationId, string reason, CancellationToken ct)
    {
        var lost = hold.Gpus.Single(g => g.NodeId == fromNodeId);
        var from = hold.Start > now ? hold.Start : now;
        var gpuIds = replacement.Indices().Select(i => (long)replacement.NodeId * PoolOccupancy.GpusPerNode + i).ToArray();
        var moved = hold with { Gpus = hold.Gpus.Select(g => g.NodeId == fromNodeId ? replacement : g).ToList() };
        var nodeIds = moved.Gpus.Select(g => g.NodeId).ToArray();
        var masks = moved.Gpus.Select(g => (short)g.Mask).ToArray();
        await db.Database.ExecuteSqlAsync($"""
            DELETE FROM allocations WHERE lease_id = {hold.LeaseId} AND node_id = {fromNodeId} AND lower(period) >= {now};
            UPDATE allocations SET period = tstzrange(lower(period), {now}, '[)')
              WHERE lease_id = {hold.LeaseId} AND node_id = {fromNodeId} AND upper(period) > {now};
            INSERT INTO allocations (lease_id, gpu_id, node_id, period)
              SELECT {hold.LeaseId}, g, {replacement.NodeId}, tstzrange({from}, {hold.End}, '[)') FROM unnest({gpuIds}::bigint[]) AS t(g);
            INSERT INTO pool_changes (pool_id, version, lease_id, start_at, end_at, node_ids, gpu_masks, created_at)
              SELECT {poolId}, coalesce(max(version), 0) + 1, {hold.LeaseId}, {hold.Start}, {hold.End}, {nodeIds}, {masks}, {now}
              FROM pool_changes WHERE pool_id = {poolId};
            """, ct);
        index.SetLease(moved);
        db.Append(EventTypes.LeaseMigrated, tenantId, reservationId, now, new
        {
            leaseId = hold.LeaseId,
            fromNodeId = fromNodeId.ToString(),
            fromGpuIndices = lost.Indices(),
            toNodeId = replacement.NodeId.ToString(),
            toGpuIndices = replacement.Indices(),
            sameFabricIsland = index.IslandOf(replacement.NodeId) == index.IslandOf(fromNodeId),
            at = from,
            reason,
        });
    }
}
