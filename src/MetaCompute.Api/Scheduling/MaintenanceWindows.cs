using MetaCompute.Api.Data;
using MetaCompute.Api.Events;
using MetaCompute.Scheduling;
using Microsoft.EntityFrameworkCore;
using NpgsqlTypes;

namespace MetaCompute.Api.Scheduling;

/// <summary>A lease in a window's way: moved to equivalent GPUs, or not movable.</summary>
public sealed record AffectedLease(Guid LeaseId, Guid ReservationId, Guid TenantId, string Outcome, int? ToNodeId);

public sealed record MaintenancePlan(MaintenanceWindow? Window, IReadOnlyList<AffectedLease> Leases, string? Problem);

/// <summary>
/// Maintenance windows on nodes. Under the pool's lock, a new window becomes a hold on all 8 GPUs in the pool's index
/// and log, so no allocation can be placed over it; every lease that overlaps it is moved off the node to equivalent
/// GPUs (same fabric island first, as for a failure), from now. If some cannot move, nothing changes and the answer
/// lists them — unless <c>force</c>, in which case they lose the node's GPUs from the window's start and are degraded.
/// </summary>
public static class MaintenanceWindows
{
    public const string Moved = "migrated";
    public const string Unmovable = "cannot_move";
    public const string Degraded = "degraded";

    public static async Task<MaintenancePlan> ScheduleAsync(MetaComputeDbContext db, PoolOccupancyCache occupancy, Node node, DateTimeOffset start,
        DateTimeOffset end, string reason, bool force, string? by, DateTimeOffset now, CancellationToken ct)
    {
        await using var tx = await db.Database.BeginTransactionAsync(ct);
        return await occupancy.LockedAsync(db, node.PoolId, async index =>
        {
            var period = new NpgsqlRange<DateTime>(start.UtcDateTime, true, end.UtcDateTime, false);
            if (await db.MaintenanceWindows.AnyAsync(w => w.NodeId == node.Id && w.Period.Overlaps(period), ct))
            {
                return new MaintenancePlan(null, [], $"Node {node.Hostname} already has a maintenance window overlapping {start:O} to {end:O}.");
            }

            var window = new MaintenanceWindow
            {
                Id = Guid.CreateVersion7(now), NodeId = node.Id, PoolId = node.PoolId, Period = period, Reason = reason, CreatedBy = by, CreatedAt = now,
            };
            var inTheWay = index.LeasesOn(node.Id).Where(h => h.Start < end && h.End > start && h.End > now).ToList();
            var owners = await db.Leases.Where(l => inTheWay.Select(h => h.LeaseId).Contains(l.Id))
                .Join(db.Reservations, l => l.ReservationId, r => r.Id, (l, r) => new { Lease = l, Reservation = r })
                .ToDictionaryAsync(x => x.Lease.Id, ct);
            var leases = inTheWay.Where(h => owners.ContainsKey(h.LeaseId)).ToList();

            // The window closes the node first, so no lease is moved onto it; each move then sees the moves before it.
            var windowHold = new LeaseHold(window.Id, start, end, [new NodeGpus(node.Id, PoolOccupancy.FullNode)]);
            index.SetLease(windowHold);
            var plans = leases.Select(h => (Hold: h, To: Allocator.Rehome(index, h, node.Id, now))).ToList();
            foreach (var (hold, to) in plans.Where(p => p.To is not null))
            {
                index.SetLease(hold with { Gpus = hold.Gpus.Select(g => g.NodeId == node.Id ? to!.Value : g).ToList() });
            }

            var affected = plans.Select(p => new AffectedLease(p.Hold.LeaseId, owners[p.Hold.LeaseId].Reservation.Id,
                owners[p.Hold.LeaseId].Reservation.TenantId, p.To is null ? (force ? Degraded : Unmovable) : Moved, p.To?.NodeId)).ToList();
            if (!force && plans.Any(p => p.To is null))
            {
                // Put the index back as it was: nothing is written.
                index.RemoveLease(window.Id);
                foreach (var hold in leases)
                {
                    index.SetLease(hold);
                }

                return new MaintenancePlan(null, affected, $"{plans.Count(p => p.To is null)} lease(s) on {node.Hostname} cannot move to equivalent GPUs.");
            }

            foreach (var (hold, to) in plans)
            {
                var owner = owners[hold.LeaseId].Reservation;
                if (to is { } replacement)
                {
                    await FailureRehoming.MoveAsync(db, index, node.PoolId, hold, node.Id, replacement, now, owner.TenantId, owner.Id,
                        "maintenance", ct);
                }
                else
                {
                    var lost = hold.Gpus.Single(g => g.NodeId == node.Id).Count;
                    await GiveUpNodeAsync(db, owners[hold.LeaseId].Lease, owner, node.Id, lost, start, now, ct);
                }
            }

            db.MaintenanceWindows.Add(window);
            db.Append(EventTypes.MaintenanceScheduled, null, null, now, new
            {
                windowId = window.Id, nodeId = node.Id.ToString(), node.Hostname, poolId = node.PoolId, startAt = start, endAt = end, reason, force, by,
                leases = affected.Select(a => new { a.LeaseId, a.ReservationId, a.Outcome, toNodeId = a.ToNodeId?.ToString() }),
            });
            await db.SaveChangesAsync(ct);
            await AllocationWriter.AppendHoldAsync(db, node.PoolId, window.Id, start, end, windowHold.Gpus, now, ct);
            await PoolOccupancyCache.CommitAsync(db, tx, node.PoolId, index, ct);
            return new MaintenancePlan(window, affected, null);
        }, ct);
    }

    /// <summary>Ends a window early or takes it back: the node is open to allocations again for that period.</summary>
    public static async Task<bool> CancelAsync(MetaComputeDbContext db, PoolOccupancyCache occupancy, Guid windowId, int nodeId, string? by,
        DateTimeOffset now, CancellationToken ct)
    {
        var poolId = await db.MaintenanceWindows.Where(w => w.Id == windowId && w.NodeId == nodeId).Select(w => w.PoolId).FirstOrDefaultAsync(ct);
        if (poolId is null)
        {
            return false;
        }

        await using var tx = await db.Database.BeginTransactionAsync(ct);
        return await occupancy.LockedAsync(db, poolId, async index =>
        {
            // Read again under the lock: a concurrent cancellation may have taken it away since the look-up above.
            var window = await db.MaintenanceWindows.SingleOrDefaultAsync(w => w.Id == windowId, ct);
            if (window is null)
            {
                return false;
            }

            db.MaintenanceWindows.Remove(window);
            db.Append(EventTypes.MaintenanceCancelled, null, null, now, new
            {
                windowId, nodeId = nodeId.ToString(), poolId, startAt = window.Period.LowerBound, endAt = window.Period.UpperBound, by,
            });
            await db.SaveChangesAsync(ct);
            await AllocationWriter.AppendHoldAsync(db, poolId, windowId, now, now, [], now, ct);
            await PoolOccupancyCache.CommitAsync(db, tx, poolId, index, ct);
            index.RemoveLease(windowId);
            return true;
        }, ct);
    }

    /// <summary>
    /// A forced window over a lease that cannot move: the lease keeps the node's GPUs only until the window starts and is
    /// degraded from then. Its hold in the index still covers the node to its end, which only makes the node look busier.
    /// </summary>
    private static async Task GiveUpNodeAsync(MetaComputeDbContext db, Lease lease, Reservation owner, int nodeId, int gpuCount,
        DateTimeOffset windowStart, DateTimeOffset now, CancellationToken ct)
    {
        await db.Database.ExecuteSqlAsync($"""
            DELETE FROM allocations WHERE lease_id = {lease.Id} AND node_id = {nodeId} AND lower(period) >= {windowStart};
            UPDATE allocations SET period = tstzrange(lower(period), {windowStart}, '[)')
              WHERE lease_id = {lease.Id} AND node_id = {nodeId} AND upper(period) > {windowStart};
            """, ct);
        var since = windowStart > now ? windowStart : now;
        lease.DegradedSince ??= since;
        db.LeaseLosses.Add(new LeaseLoss { LeaseId = lease.Id, NodeId = nodeId, GpuCount = gpuCount, Since = since });
        db.Append(EventTypes.LeaseDegraded, owner.TenantId, owner.Id, now, new
        {
            leaseId = lease.Id, nodeId = nodeId.ToString(), gpuCount, from = windowStart, reason = "maintenance on the node and no equivalent GPUs to move to",
        });
    }
}
