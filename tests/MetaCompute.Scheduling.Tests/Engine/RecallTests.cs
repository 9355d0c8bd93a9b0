using static MetaCompute.Scheduling.Tests.Engine.Pools;

namespace MetaCompute.Scheduling.Tests.Engine;

public sealed class RecallTests
{
    private static readonly DateTimeOffset RecallAt = T0.AddHours(1);

    /// <summary>Four nodes, each taken by one lease of 8 GPUs from hour 0 to 10.</summary>
    private static (PoolOccupancy Pool, Guid[] Leases) FullPool()
    {
        var pool = WithIslands(4, 4);
        var leases = Enumerable.Range(0, 4).Select(_ => pool.Book(Request(8, 0, 10))).ToArray();
        return (pool, leases);
    }

    [Fact]
    public void Of_leases_that_each_suffice_the_most_recently_started_then_the_cheapest_goes()
    {
        var (pool, leases) = FullPool();
        var candidates = new[]
        {
            new RecallCandidate(leases[0], 8, T0, 1.0m),
            new RecallCandidate(leases[1], 8, T0.AddMinutes(30), 2.0m),
            new RecallCandidate(leases[2], 8, T0.AddMinutes(30), 1.5m),
        };

        var plan = Recall.Plan(pool, Request(8, 1, 3), candidates, RecallAt);

        Assert.Equal([leases[2]], plan!.Victims);
        Assert.Equal(RecallAt, pool.Lease(leases[2])!.End);
        Assert.Equal(T0.AddHours(10), pool.Lease(leases[1])!.End);
    }

    [Fact]
    public void When_one_lease_is_not_enough_it_takes_as_few_as_fit_and_none_it_does_not_need()
    {
        var (pool, leases) = FullPool();
        var candidates = leases.Take(3).Select((l, i) => new RecallCandidate(l, 8, T0.AddMinutes(i), 1m)).ToList();

        var plan = Recall.Plan(pool, Request(16, 1, 3), candidates, RecallAt);

        Assert.Equal(2, plan!.Victims.Count);
        Assert.Equal(16, plan.Placement.GpuCount);
        Assert.Equal(2, leases.Count(l => pool.Lease(l)!.End == RecallAt));
    }

    [Fact]
    public void When_recalling_every_candidate_is_not_enough_nothing_changes()
    {
        var (pool, leases) = FullPool();
        var candidates = new[] { new RecallCandidate(leases[0], 8, T0, 1m) };

        Assert.Null(Recall.Plan(pool, Request(16, 1, 3), candidates, RecallAt));
        Assert.All(leases, l => Assert.Equal(T0.AddHours(10), pool.Lease(l)!.End));
    }
}
