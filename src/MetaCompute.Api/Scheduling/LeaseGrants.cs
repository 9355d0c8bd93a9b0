using MetaCompute.Api.Billing;
using MetaCompute.Api.Data;
using MetaCompute.Api.Events;
using MetaCompute.Api.Infrastructure;
using MetaCompute.Scheduling;

namespace MetaCompute.Api.Scheduling;

public static class LeaseGrants
{
    /// <summary>
    /// Gives a reservation its lease on the placed GPUs over its window: the lease, the <c>reservation.scheduled</c>
    /// event, the hold in the pool's index (so the next decision under the same lock sees it) and the allocation write
    /// to send once the lease is written (its rows reference it). For a request admitted from the queue,
    /// <paramref name="queuedSince"/> says since when it waited.
    /// </summary>
    public static (LeaseHold Hold, AllocationWrite Write) Grant(MetaComputeDbContext db, PoolOccupancy index, Reservation reservation,
        Placement placement, DateTimeOffset now, DateTimeOffset? queuedSince)
    {
        var lease = new Lease
        {
            Id = Guid.CreateVersion7(now), PoolId = reservation.PoolId, StartAt = reservation.StartAt, EndAt = reservation.EndAt, CreatedAt = now,
        };
        reservation.Lease = lease;
        reservation.Status = ReservationStatus.Scheduled;
        // A reserved block is paid for its whole window when it is granted; the other tiers pay as they use (metered).
        if (reservation.Tier == ReservationTier.Reserved)
        {
            Ledger.Charge(db, reservation, ChargeKind.Reservation, reservation.TotalPrice, now);
        }

        db.Append(EventTypes.ReservationScheduled, reservation.TenantId, reservation.Id, now, new
        {
            poolId = reservation.PoolId,
            tier = WireEnum.Name(reservation.Tier),
            gpuCount = reservation.GpuCount,
            startAt = reservation.StartAt,
            endAt = reservation.EndAt,
            leaseId = lease.Id,
            nodeIds = placement.Gpus.Select(g => g.NodeId.ToString()),
            queuedSeconds = queuedSince is { } since ? (long?)(now - since).TotalSeconds : null,
        });
        var hold = new LeaseHold(lease.Id, lease.StartAt, lease.EndAt, placement.Gpus);
        index.SetLease(hold);
        return (hold, AllocationWriter.Insert(lease.Id, lease.StartAt, lease.EndAt, placement.Gpus, now));
    }
}
