namespace MetaCompute.Scheduling;

/// <summary>A request waiting for capacity: its size, how long it runs, the earliest it may start and until when it waits.</summary>
public sealed record QueuedRequest(
    Guid Id, int GpuCount, DateTimeOffset EarliestStart, TimeSpan Duration, bool SingleFabricIsland, int HoldbackGpus, DateTimeOffset WaitUntil);

/// <summary>A request that could not start now, with the earliest start it could get within its wait when found blocked.</summary>
public sealed record BlockedRequest(QueuedRequest Request, DateTimeOffset? ProtectedStart);

public static class Admission
{
    /// <summary>
    /// Walks the queue in the caller's order (priority) and starts each request that fits now. A request that does not
    /// fit is blocked, and its earliest possible start within its wait is protected: a later request starts ahead of
    /// it (backfill) only if every protected start can still be met with the later one placed. <paramref name="allowed"/>
    /// vetoes a request for reasons outside capacity (quotas); <paramref name="admit"/> records a start and must add its
    /// hold to the pool, so the next decision sees it.
    /// </summary>
    public static IReadOnlyList<BlockedRequest> Run(PoolOccupancy pool, IEnumerable<QueuedRequest> ordered, DateTimeOffset now,
        Func<QueuedRequest, DateTimeOffset, bool> allowed, Action<QueuedRequest, DateTimeOffset, Placement> admit)
    {
        var blocked = new List<BlockedRequest>();
        var protectedStarts = new List<PlacementRequest>();
        foreach (var request in ordered)
        {
            var start = request.EarliestStart > now ? request.EarliestStart : now;
            var asked = new PlacementRequest(request.GpuCount, start, start + request.Duration, request.SingleFabricIsland, request.HoldbackGpus);
            if (!allowed(request, start))
            {
                continue;
            }

            if (Allocator.Decide(pool, asked).Placement is not { } placement)
            {
                var windows = BookableWindows.Find(pool, new WindowSearch(request.GpuCount, request.Duration, start, request.WaitUntil,
                    request.SingleFabricIsland, request.HoldbackGpus, 1));
                var earliest = windows.Count > 0 ? windows[0].Start : (DateTimeOffset?)null;
                if (earliest is { } at)
                {
                    protectedStarts.Add(asked with { Start = at, End = at + request.Duration });
                }

                blocked.Add(new BlockedRequest(request, earliest));
                continue;
            }

            var trial = new LeaseHold(Guid.NewGuid(), asked.Start, asked.End, placement.Gpus);
            pool.SetLease(trial);
            var delaysOneAhead = protectedStarts.Any(p => !Allocator.Decide(pool, p).Placed);
            pool.RemoveLease(trial.LeaseId);
            if (delaysOneAhead)
            {
                blocked.Add(new BlockedRequest(request, null));
                continue;
            }

            admit(request, start, placement);
        }

        return blocked;
    }
}
