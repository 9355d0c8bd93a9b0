namespace MetaCompute.Scheduling;

/// <summary>A spot lease that first-party demand may take back, with what decides how much its recall disrupts.</summary>
public sealed record RecallCandidate(Guid LeaseId, int GpuCount, DateTimeOffset Start, decimal PricePerGpuHour);

/// <summary>The leases to recall and where the first-party request then goes.</summary>
public sealed record RecallPlan(IReadOnlyList<Guid> Victims, Placement Placement);

public static class Recall
{
    /// <summary>
    /// Chooses spot leases to give back at <paramref name="recallAt"/> so that <paramref name="request"/> (which starts
    /// no earlier) fits, disrupting least: fewest leases, then the most recently started, then the cheapest. A single
    /// lease that suffices is found exactly; beyond one, greedily: the largest first until the request fits, then any
    /// that turned out not to be needed go back. On success the index holds the victims shortened to
    /// <paramref name="recallAt"/>; on failure it is as it was.
    /// </summary>
    public static RecallPlan? Plan(PoolOccupancy pool, PlacementRequest request, IEnumerable<RecallCandidate> candidates, DateTimeOffset recallAt)
    {
        var eligible = candidates.Where(c => pool.Lease(c.LeaseId) is { } hold && hold.End > recallAt && hold.Start < request.End).ToList();
        var originals = eligible.ToDictionary(c => c.LeaseId, c => pool.Lease(c.LeaseId)!);

        // One lease is the least disruption there is: the most recently started, then the cheapest, that suffices alone.
        foreach (var single in eligible.OrderByDescending(c => c.Start).ThenBy(c => c.PricePerGpuHour).ThenByDescending(c => c.LeaseId))
        {
            Shorten(pool, originals[single.LeaseId], recallAt);
            if (Allocator.Decide(pool, request) is { Placement: { } alone })
            {
                return new RecallPlan([single.LeaseId], alone);
            }

            pool.SetLease(originals[single.LeaseId]);
        }

        // Otherwise several: the largest first, so as few as possible.
        var chosen = new List<RecallCandidate>();
        PlacementDecision decision = new(null, PlacementFailure.NotEnoughWholeNodes);
        foreach (var candidate in eligible.OrderByDescending(c => c.GpuCount).ThenByDescending(c => c.Start).ThenBy(c => c.PricePerGpuHour))
        {
            Shorten(pool, originals[candidate.LeaseId], recallAt);
            chosen.Add(candidate);
            decision = Allocator.Decide(pool, request);
            if (decision.Placed)
            {
                break;
            }
        }

        if (!decision.Placed)
        {
            foreach (var candidate in chosen)
            {
                pool.SetLease(originals[candidate.LeaseId]);
            }

            return null;
        }

        // A large victim taken early may be unneeded once smaller ones joined: keep only those the request needs.
        foreach (var candidate in chosen.ToList())
        {
            pool.SetLease(originals[candidate.LeaseId]);
            var without = Allocator.Decide(pool, request);
            if (without.Placed)
            {
                chosen.Remove(candidate);
                decision = without;
            }
            else
            {
                Shorten(pool, originals[candidate.LeaseId], recallAt);
            }
        }

        return new RecallPlan(chosen.Select(c => c.LeaseId).ToList(), decision.Placement!);
    }

    private static void Shorten(PoolOccupancy pool, LeaseHold hold, DateTimeOffset recallAt)
    {
        if (hold.Start >= recallAt)
        {
            pool.RemoveLease(hold.LeaseId);
        }
        else
        {
            pool.SetLease(hold with { End = recallAt });
        }
    }
}
