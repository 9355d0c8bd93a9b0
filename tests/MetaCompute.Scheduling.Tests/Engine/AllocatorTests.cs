using static MetaCompute.Scheduling.Tests.Engine.Pools;

namespace MetaCompute.Scheduling.Tests.Engine;

public sealed class AllocatorTests
{
    [Fact]
    public void Whole_nodes_come_from_the_smallest_island_that_fits()
    {
        var pool = WithIslands(4, 16, 4, 8);
        var placement = Allocator.Decide(pool, Request(32, 0, 4)).Placement!;
        Assert.Equal([2], placement.FabricIslandIds);
        Assert.All(placement.Gpus, g => Assert.Equal(PoolOccupancy.FullNode, g.Mask));
        Assert.Equal(4, placement.Gpus.Count);
    }

    [Fact]
    public void Within_an_island_whole_nodes_take_the_fewest_racks()
    {
        var pool = WithIslands(4, 12);
        // Use one node of the first rack, so it has 3 free and the others 4.
        pool.Book(Request(8, 0, 4));
        var placement = Allocator.Decide(pool, Request(32, 0, 4)).Placement!;
        // 4 nodes fit in one wholly free rack: nodes 5-8 (the first rack that fits best).
        Assert.Equal([5, 6, 7, 8], placement.Gpus.Select(g => g.NodeId));
    }

    [Fact]
    public void The_single_island_wish_fails_rather_than_splits()
    {
        var pool = WithIslands(4, 4, 4);
        var decision = Allocator.Decide(pool, Request(48, 0, 4, singleIsland: true));
        Assert.Equal(PlacementFailure.NoSingleFabricIslandHasRoom, decision.Failure);
    }

    [Fact]
    public void Without_the_wish_a_large_request_spans_the_fewest_islands()
    {
        var pool = WithIslands(4, 4, 8, 2);
        var placement = Allocator.Decide(pool, Request(80, 0, 4)).Placement!;
        Assert.Equal(10, placement.Gpus.Count);
        // The largest island (8) plus the smallest that covers the remaining 2 nodes.
        Assert.Equal([2, 3], placement.FabricIslandIds.Order());
    }

    [Fact]
    public void Small_requests_fill_partly_used_nodes_first()
    {
        var pool = WithIslands(4, 4);
        pool.Book(Request(3, 0, 10));
        var placement = Allocator.Decide(pool, Request(4, 2, 6)).Placement!;
        var node = Assert.Single(placement.Gpus);
        Assert.Equal(1, node.NodeId);
        Assert.Equal(0b0111_1000, node.Mask);
    }

    [Fact]
    public void The_holdback_is_never_sold()
    {
        var pool = WithIslands(4, 4);
        Assert.Equal(PlacementFailure.PoolCannotSellMoreThanItHas, Allocator.Decide(pool, Request(32, 0, 1, holdback: 8)).Failure);
        Assert.True(Allocator.Decide(pool, Request(24, 0, 1, holdback: 8)).Placed);
    }

    [Fact]
    public void Busy_gpus_are_free_again_after_their_window()
    {
        var pool = WithIslands(4, 4);
        pool.Book(Request(32, 0, 4));
        Assert.Equal(PlacementFailure.PoolCannotSellMoreThanItHas, Allocator.Decide(pool, Request(8, 3, 5)).Failure);
        Assert.True(Allocator.Decide(pool, Request(32, 4, 8)).Placed);
    }

    [Fact]
    public void Nodes_that_are_not_allocatable_are_never_used()
    {
        var pool = WithIslands(4, 2);
        pool.SetAllocatable(1, false);
        var placement = Allocator.Decide(pool, Request(8, 0, 1)).Placement!;
        Assert.Equal(2, Assert.Single(placement.Gpus).NodeId);
        Assert.False(Allocator.Decide(pool, Request(16, 0, 1)).Placed);
    }

    [Fact]
    public void Gpu_counts_that_are_not_whole_nodes_above_eight_are_refused()
    {
        var pool = WithIslands(4, 4);
        Assert.Throws<ArgumentException>(() => Allocator.Decide(pool, Request(12, 0, 1)));
        Assert.Throws<ArgumentException>(() => Allocator.Decide(pool, Request(0, 0, 1)));
    }

    [Fact]
    public void Windows_start_when_holds_end_and_on_the_whole_hours_after()
    {
        var pool = WithIslands(4, 4);
        pool.Book(Request(32, 0, 5));
        var windows = BookableWindows.Find(pool, new WindowSearch(16, TimeSpan.FromHours(2), T0, T0.AddHours(24), Limit: 3));
        Assert.Equal([T0.AddHours(5), T0.AddHours(6), T0.AddHours(7)], windows.Select(w => w.Start));
        Assert.Equal(T0.AddHours(7), windows[0].End);
    }

    [Fact]
    public void An_empty_pool_offers_as_many_distinct_starts_as_asked_from_the_earliest_on()
    {
        var pool = WithIslands(4, 4);
        var from = T0.AddMinutes(17);
        var windows = BookableWindows.Find(pool, new WindowSearch(16, TimeSpan.FromHours(2), from, from.AddDays(7), Limit: 3));
        Assert.Equal([from, T0.AddHours(1), T0.AddHours(2)], windows.Select(w => w.Start));
    }

    [Fact]
    public void Hourly_starts_stop_where_a_later_hold_makes_them_infeasible_and_resume_when_it_ends()
    {
        var pool = WithIslands(4, 4);
        pool.Book(Request(32, 4, 6));
        var windows = BookableWindows.Find(pool, new WindowSearch(32, TimeSpan.FromHours(2), T0, T0.AddHours(24), Limit: 5));
        // 0–2 and 1–3 and 2–4 fit before the hold; 3–5 would overlap it; the next start is its end.
        Assert.Equal([T0, T0.AddHours(1), T0.AddHours(2), T0.AddHours(6), T0.AddHours(7)], windows.Select(w => w.Start));
    }

    [Fact]
    public void A_lease_extends_up_to_the_next_hold_on_its_gpus()
    {
        var pool = WithIslands(4, 1);
        var lease = pool.Book(Request(8, 0, 4));
        pool.Book(Request(8, 10, 12));
        Assert.Equal(T0.AddHours(10), BookableWindows.LatestExtension(pool, lease, T0.AddHours(100)));
        Assert.Equal(T0.AddHours(6), BookableWindows.LatestExtension(pool, lease, T0.AddHours(6)));
    }

    [Fact]
    public void A_failed_nodes_gpus_move_within_their_island_first_then_anywhere_in_the_pool()
    {
        var pool = WithIslands(4, 4, 8);
        var lease = pool.Book(Request(8, 0, 10));
        var hold = pool.Lease(lease)!;
        var failed = hold.Gpus.Single().NodeId;
        pool.SetAllocatable(failed, false);

        var sameIsland = Allocator.Rehome(pool, hold, failed, T0.AddHours(2))!.Value;
        Assert.Equal(pool.IslandOf(failed), pool.IslandOf(sameIsland.NodeId));
        Assert.Equal(PoolOccupancy.FullNode, sameIsland.Mask);

        // Fill the rest of the failed node's island: the move goes to the other island.
        foreach (var node in Enumerable.Range(1, 4).Where(n => n != failed && pool.IslandOf(n) == pool.IslandOf(failed)))
        {
            pool.SetLease(new LeaseHold(Guid.NewGuid(), T0, T0.AddHours(10), [new NodeGpus(node, PoolOccupancy.FullNode)]));
        }

        var elsewhere = Allocator.Rehome(pool, hold, failed, T0.AddHours(2))!.Value;
        Assert.NotEqual(pool.IslandOf(failed), pool.IslandOf(elsewhere.NodeId));
    }

    [Fact]
    public void A_failed_nodes_gpus_have_nowhere_to_go_in_a_full_pool()
    {
        var pool = WithIslands(4, 2);
        var lease = pool.Book(Request(8, 0, 10));
        pool.Book(Request(8, 0, 10));
        var hold = pool.Lease(lease)!;
        pool.SetAllocatable(hold.Gpus.Single().NodeId, false);
        Assert.Null(Allocator.Rehome(pool, hold, hold.Gpus.Single().NodeId, T0.AddHours(1)));
    }
}
