using MetaCompute.Api.Data;
using MetaCompute.Api.Events;
using MetaCompute.Api.Reservations;
using MetaCompute.Scheduling;
using Microsoft.EntityFrameworkCore;

namespace MetaCompute.Api.Scheduling;

/// <summary>The first-party request's new window (it starts when the notice ends) and what the recall writes.</summary>
public sealed record RecallOutcome(DateTimeOffset Start, DateTimeOffset End, Placement Placement, IReadOnlyList<AllocationWrite> Writes);

/// <summary>
/// First-party demand that finds no free capacity takes GPUs back from spot leases: each victim gets a
/// <c>lease.recall_notice</c> now and keeps its GPUs for the pool's notice period, then the lifecycle tick ends it as
/// <c>recalled</c>. The first-party reservation starts when the notice ends. Reserved and on-demand leases are never
/// candidates. Runs in the pool's decider, under its lock.
/// </summary>
public static class SpotRecalls
{
    public static async Task<RecallOutcome?> TryAsync(MetaComputeDbContext db, PoolOccupancy index, BookingSpec spec, DateTimeOffset now,
        CancellationToken ct)
    {
        // A victim keeps its GPUs for at least the notice, and until the first-party reservation needs them if later.
        var noticeEnds = now.AddSeconds(spec.Pool.Rules.RecallNoticeSeconds);
        var recallAt = spec.StartAt > noticeEnds ? spec.StartAt : noticeEnds;
        var start = spec.StartAt > recallAt ? spec.StartAt : recallAt;
        var end = start + (spec.EndAt - spec.StartAt);
        var spot = await db.Reservations.Include(r => r.Lease)
            .Where(r => r.PoolId == spec.Pool.Id && r.Tier == ReservationTier.Spot && r.RecallAt == null && r.EndAt > recallAt && r.StartAt < end
                        && (r.Status == ReservationStatus.Scheduled || r.Status == ReservationStatus.Active))
            .ToListAsync(ct);
        var byLease = spot.Where(r => r.Lease is not null).ToDictionary(r => r.Lease!.Id);
        var plan = Recall.Plan(index, new PlacementRequest(spec.GpuCount, start, end, spec.SingleFabricIsland),
            byLease.Values.Select(r => new RecallCandidate(r.Lease!.Id, r.GpuCount, r.StartAt, r.PricePerGpuHour)), recallAt);
        if (plan is null)
        {
            return null;
        }

        var writes = new List<AllocationWrite>();
        foreach (var leaseId in plan.Victims)
        {
            var victim = byLease[leaseId];
            var lease = victim.Lease!;
            var neverStarted = lease.StartAt >= recallAt;
            writes.Add(neverStarted
                ? AllocationWriter.Delete(lease.Id, now)
                : AllocationWriter.SetEnd(index.Lease(lease.Id) ?? throw new InvalidOperationException($"Lease {lease.Id} left the index."), recallAt, now));
            victim.RecallAt = recallAt;
            if (!neverStarted)
            {
                victim.EndAt = recallAt;
                lease.EndAt = recallAt;
            }

            // A recalled spot lease pays only for the time it held its GPUs.
            victim.TotalPrice = neverStarted ? 0 : Pricing.Total(victim.PricePerGpuHour, victim.GpuCount, victim.StartAt, recallAt);
            victim.UpdatedAt = now;
            db.Append(EventTypes.LeaseRecallNotice, victim.TenantId, victim.Id, now, new
            {
                leaseId = lease.Id,
                recallAt,
                noticeSeconds = spec.Pool.Rules.RecallNoticeSeconds,
                reason = "first-party demand",
            });
        }

        return new RecallOutcome(start, end, plan.Placement, writes);
    }
}
