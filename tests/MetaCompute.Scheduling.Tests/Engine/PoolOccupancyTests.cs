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

    [Fact]
    public void Removing_holds_that_share_a_start_frees_exactly_their_gpus()
    {
        // One node, 200 one-GPU holds of an hour: starts every 10 minutes, each start shared by several holds on
        // different GPUs, removed in a shuffled order. After each removal, every GPU is busy exactly when a hold left
        // on it says so.
        var pool = WithIslands(1, 1);
        var holds = Enumerable.Range(0, 200)
            .Select(i => new LeaseHold(Guid.NewGuid(), T0.AddMinutes(10 * (i / 8)), T0.AddMinutes(10 * (i / 8) + 60), [new NodeGpus(1, (byte)(1 << (i % 8)))]))
            .ToList();
        foreach (var hold in holds)
        {
            pool.SetLease(hold);
        }

        var left = holds.ToList();
        var random = new Random(7);
        foreach (var hold in holds.OrderBy(_ => random.Next()).ToList())
        {
            Assert.True(pool.RemoveLease(hold.LeaseId));
            left.Remove(hold);
            var minute = (int)(hold.Start - T0).TotalMinutes;
            foreach (var at in new[] { hold.Start, hold.Start.AddMinutes(30), hold.End.AddMinutes(-1) })
            {
                var busy = left.Where(h => h.Start <= at && at < h.End).Aggregate(0, (mask, h) => mask | h.Gpus[0].Mask);
                for (var gpu = 0; gpu < 8; gpu++)
                {
                    var free = pool.IsFree(1, (byte)(1 << gpu), at, at.AddSeconds(1));
                    Assert.True(free == ((busy & (1 << gpu)) == 0), $"GPU {gpu} at minute {minute}: free={free}, busy mask {busy:b8}");
                }
            }
        }

        Assert.Equal(0, pool.LeaseCount);
    }

    [Fact]
    public void A_long_hold_counts_behind_thousands_of_short_ended_ones()
    {
        // GPU 0 is held for two hours from T0; after it, 5,000 holds of 20 ms on GPUs 1-7 come and go. A window an
        // hour later must still find GPU 0 busy and the others free; forgetting the short holds changes neither.
        var pool = WithIslands(1, 1);
        pool.SetLease(new LeaseHold(Guid.NewGuid(), T0, T0.AddHours(2), [new NodeGpus(1, 0b1)]));
        for (var i = 0; i < 5_000; i++)
        {
            var start = T0.AddMilliseconds(1 + 20 * i);
            pool.SetLease(new LeaseHold(Guid.NewGuid(), start, start.AddMilliseconds(20), [new NodeGpus(1, (byte)(2 << (i % 7)))]));
        }

        var hour = T0.AddHours(1);
        Assert.False(pool.IsFree(1, 0b1, hour, hour.AddMinutes(1)));
        Assert.True(pool.IsFree(1, 0b1111_1110, hour, hour.AddMinutes(1)));
        Assert.False(pool.IsFree(1, 0b10, T0.AddMilliseconds(5), T0.AddMilliseconds(6)));

        pool.Forget(T0.AddMinutes(30));
        Assert.Equal(1, pool.LeaseCount);
        Assert.False(pool.IsFree(1, 0b1, hour, hour.AddMinutes(1)));
        Assert.True(pool.IsFree(1, 0b1111_1110, T0, hour));
    }

    [Fact]
    public void A_long_hold_after_forgotten_short_ones_still_counts()
    {
        // 5,000 holds of 20 ms, then GPU 7 held for two hours from minute 10. Forgetting the short holds moves the long
        // one to the front of the node's timeline; a window an hour in must still find it.
        var pool = WithIslands(1, 1);
        for (var i = 0; i < 5_000; i++)
        {
            var start = T0.AddMilliseconds(20 * i);
            pool.SetLease(new LeaseHold(Guid.NewGuid(), start, start.AddMilliseconds(20), [new NodeGpus(1, (byte)(1 << (i % 7)))]));
        }

        pool.SetLease(new LeaseHold(Guid.NewGuid(), T0.AddMinutes(10), T0.AddHours(2), [new NodeGpus(1, 0b1000_0000)]));
        pool.Forget(T0.AddMinutes(5));

        var hour = T0.AddHours(1);
        Assert.Equal(1, pool.LeaseCount);
        Assert.False(pool.IsFree(1, 0b1000_0000, hour, hour.AddMinutes(1)));
        Assert.True(pool.IsFree(1, 0b0111_1111, T0, T0.AddHours(3)));
    }
}
