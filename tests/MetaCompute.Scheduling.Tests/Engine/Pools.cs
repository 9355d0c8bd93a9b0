using MetaCompute.Simulation.Inventory;

namespace MetaCompute.Scheduling.Tests.Engine;

/// <summary>Builds engine pools for tests: by hand (islands of given sizes) or from the simulation's generator.</summary>
public static class Pools
{
    public static readonly DateTimeOffset T0 = new(2026, 12, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>One rack of <c>nodesPerRack</c> nodes after another; node ids are 1.. in order.</summary>
    public static PoolOccupancy WithIslands(int nodesPerRack, params int[] nodesPerIsland)
    {
        var nodes = new List<NodeSpec>();
        var rack = 0;
        for (var island = 0; island < nodesPerIsland.Length; island++)
        {
            for (var n = 0; n < nodesPerIsland[island]; n++)
            {
                if (n % nodesPerRack == 0)
                {
                    rack++;
                }

                nodes.Add(new NodeSpec(nodes.Count + 1, island + 1, rack, Allocatable: true));
            }
        }

        return new PoolOccupancy(nodes);
    }

    public static PoolOccupancy FromInventory(Inventory inventory) =>
        new(inventory.Nodes.Select(n => new NodeSpec(n.Id, n.IslandId, n.RackId, !n.Failed)));

    public static PlacementRequest Request(int gpus, int fromHour, int toHour, bool singleIsland = false, int holdback = 0) =>
        new(gpus, T0.AddHours(fromHour), T0.AddHours(toHour), singleIsland, holdback);

    public static Guid Book(this PoolOccupancy pool, PlacementRequest request)
    {
        var decision = Allocator.Decide(pool, request);
        Assert.True(decision.Placed, $"expected a placement, got {decision.Failure}");
        var lease = Guid.NewGuid();
        pool.SetLease(new LeaseHold(lease, request.Start, request.End, decision.Placement!.Gpus));
        return lease;
    }
}
