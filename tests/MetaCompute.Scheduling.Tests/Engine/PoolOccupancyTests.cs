using static MetaCompute.Scheduling.Tests.Engine.Pools;

namespace MetaCompute.Scheduling.Tests.Engine;

public sealed class PoolOccupancyTests
{
    [Fact]
    public void Forget_drops_exactly_the_holds_that_ended_by_then()
    {
        var pool = WithIslands(5, 5);
        var ended = pool.Book(Request(8, 0, 2));
        var running = pool.Book(Request(8, 0, 5));
        var extended = pool.Book(Request(8, 0, 2));
        var cut = pool.Book(Request(8, 0, 6));
        var hold = pool.Lease(extended)!;
        pool.SetLease(hold with { End = T0.AddHours(4) });
        pool.SetLease(pool.Lease(cut)! with { End = T0.AddHours(1) });
        var gone = pool.Book(Request(8, 0, 1));
        pool.RemoveLease(gone);

        pool.Forget(T0.AddHours(3));

        Assert.Null(pool.Lease(ended));
        Assert.Null(pool.Lease(cut));
        Assert.NotNull(pool.Lease(running));
        // Its first end (hour 2) has passed, but the hold now ends at hour 4.
        Assert.Equal(T0.AddHours(4), pool.Lease(extended)!.End);
        Assert.Equal(2, pool.LeaseCount);
        // The forgotten holds' GPUs are free again; the kept ones are not.
        Assert.Equal(24, Allocator.FreeGpus(pool, T0.AddHours(3), T0.AddHours(4)));

        pool.Forget(T0.AddHours(5));
        Assert.Equal(0, pool.LeaseCount);
    }
}
