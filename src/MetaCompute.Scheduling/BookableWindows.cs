namespace MetaCompute.Scheduling;

/// <summary>A search for bookable windows of a fixed length starting between two times (an offerings query).</summary>
public sealed record WindowSearch(
    int GpuCount,
    TimeSpan Duration,
    DateTimeOffset EarliestStart,
    DateTimeOffset LatestStart,
    bool SingleFabricIsland = false,
    int HoldbackGpus = 0,
    int Limit = 10);

public sealed record BookableWindow(DateTimeOffset Start, DateTimeOffset End, Placement Placement);

public static class BookableWindows
{
    /// <summary>At most this many candidate starts are tried, so a crowded pool cannot make one query slow.</summary>
    public const int MaxCandidates = 512;

    /// <summary>
    /// The next feasible windows, earliest first, each starting at a different time. Feasibility only changes when a
    /// hold ends, so the candidates are the earliest start and every end of a hold after it, rounded up to the minute;
    /// after a feasible one, the whole hours that follow it (up to the next candidate) are offered too while they stay
    /// feasible, so a quiet pool offers a choice of starts rather than one. Each such hour costs one decision at most
    /// past the last window found, so a crowded pool pays nothing for it.
    /// </summary>
    public static IReadOnlyList<BookableWindow> Find(PoolOccupancy pool, WindowSearch search)
    {
        var earliest = search.EarliestStart.UtcTicks;
        var latest = search.LatestStart.UtcTicks;
        var candidates = pool.BusyEnds()
            .Where(t => t > earliest && t <= latest)
            .Select(t => CeilToMinute(t))
            .Where(t => t <= latest)
            .Prepend(earliest)
            .Distinct()
            .Order()
            .Take(MaxCandidates)
            .ToList();

        var found = new List<BookableWindow>();
        for (var i = 0; i < candidates.Count && found.Count < search.Limit; i++)
        {
            var next = i + 1 < candidates.Count ? candidates[i + 1] : latest + 1;
            for (var ticks = candidates[i]; ticks < next && ticks <= latest && found.Count < search.Limit; ticks = NextWholeHour(ticks))
            {
                var start = new DateTimeOffset(ticks, TimeSpan.Zero);
                var end = start + search.Duration;
                if (Allocator.Decide(pool, new PlacementRequest(search.GpuCount, start, end, search.SingleFabricIsland, search.HoldbackGpus)).Placement
                    is not { } placement)
                {
                    break;
                }

                found.Add(new BookableWindow(start, end, placement));
            }
        }

        return found;
    }

    /// <summary>The latest end a lease can be extended to on the same GPUs, not past <paramref name="limit"/>.</summary>
    public static DateTimeOffset LatestExtension(PoolOccupancy pool, Guid leaseId, DateTimeOffset limit)
    {
        var lease = pool.Lease(leaseId) ?? throw new ArgumentException($"Lease {leaseId} is not in the pool.", nameof(leaseId));
        var latest = limit.UtcTicks;
        foreach (var gpus in lease.Gpus)
        {
            if (!pool.IsAllocatable(pool.PositionOf(gpus.NodeId)))
            {
                // A draining or failed node keeps its leases to their end but takes no more time.
                return lease.End;
            }

            latest = Math.Min(latest, pool.NextBusyStart(gpus.NodeId, gpus.Mask, lease.End.UtcTicks, leaseId));
        }

        return new DateTimeOffset(Math.Max(latest, lease.End.UtcTicks), TimeSpan.Zero);
    }

    private static long NextWholeHour(long ticks) => (ticks / TimeSpan.TicksPerHour + 1) * TimeSpan.TicksPerHour;

    private static long CeilToMinute(long ticks) => (ticks + TimeSpan.TicksPerMinute - 1) / TimeSpan.TicksPerMinute * TimeSpan.TicksPerMinute;
}
