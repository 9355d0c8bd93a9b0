using MetaCompute.Scheduling;
using MetaCompute.Simulation.Inventory;

namespace MetaCompute.Bench;

/// <summary>
/// A pool of the given size already carrying leases: mostly GPUs of one node, some 1–4 node blocks, 1–48 h long,
/// starting over the next 30 days. Holds are placed by a fast random fill (not the allocator) so a million-GPU pool
/// with two million leases builds in seconds; it only has to be a realistic occupancy to decide against.
/// </summary>
public static class LoadedPool
{
    public static readonly DateTimeOffset Now = new(2026, 12, 1, 0, 0, 0, TimeSpan.Zero);

    public static PoolOccupancy Build(int gpus, int leases, int seed = 42)
    {
        var inventory = InventoryGenerator.Generate(InventoryOptions.SinglePool(gpus, AllocationUnit.Gpu, seed));
        var nodes = inventory.Nodes.Select(n => new NodeSpec(n.Id, n.IslandId, n.RackId, true)).ToArray();
        var pool = new PoolOccupancy(nodes);
        var random = new Random(seed);
        var placed = 0;
        var attempts = 0;
        while (placed < leases && attempts < leases * 8)
        {
            attempts++;
            var start = Now.AddHours(random.Next(0, 30 * 24));
            var end = start.AddHours(random.Next(1, 49));
            var small = random.NextDouble() < 0.8;
            var nodeCount = small ? 1 : random.Next(1, 5);
            var first = random.Next(0, nodes.Length - nodeCount);
            var held = new List<NodeGpus>();
            for (var i = 0; i < nodeCount; i++)
            {
                var node = nodes[first + i].NodeId;
                var width = random.Next(1, 9);
                var mask = small ? (byte)(((1 << width) - 1) << random.Next(0, 9 - width)) : PoolOccupancy.FullNode;
                held.Add(new NodeGpus(node, mask));
            }

            if (Fits(pool, held, start, end))
            {
                pool.SetLease(new LeaseHold(Guid.NewGuid(), start, end, held));
                placed++;
            }
        }

        return pool;
    }

    private static bool Fits(PoolOccupancy pool, List<NodeGpus> held, DateTimeOffset start, DateTimeOffset end) =>
        held.All(h => pool.IsFree(h.NodeId, h.Mask, start, end));

    /// <summary>The requests decided against the loaded pool: what tenants typically ask for.</summary>
    public static PlacementRequest[] Requests(int count, int seed = 7)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(_ =>
        {
            var start = Now.AddHours(random.Next(0, 30 * 24));
            var gpus = random.Next(0, 3) switch { 0 => random.Next(1, 8), 1 => 8 * random.Next(1, 5), _ => 8 * random.Next(8, 33) };
            return new PlacementRequest(gpus, start, start.AddHours(random.Next(1, 49)), SingleFabricIsland: random.Next(0, 2) == 0);
        }).ToArray();
    }
}
