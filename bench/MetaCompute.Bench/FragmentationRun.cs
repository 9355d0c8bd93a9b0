using System.Numerics;
using MetaCompute.Scheduling;
using MetaCompute.Simulation.Inventory;

namespace MetaCompute.Bench;

/// <summary>
/// A long random workload (arrivals, departures) through the engine and through a first-fit baseline that takes the
/// first free GPUs in node order; reports the share of free GPUs that sit in wholly free nodes (higher is better:
/// those are what multi-node jobs can use) and the share of requests placed.
/// </summary>
public static class FragmentationRun
{
    /// <summary>Enough arrivals to keep a 4,096-GPU fleet around 80 % busy, where fragmentation starts to cost.</summary>
    private const int ArrivalsPerHour = 20;

    public static void Run(int gpus, int steps, int seed)
    {
        Console.WriteLine($"Fleet: {gpus:N0} GPUs, {steps:N0} hourly steps, {ArrivalsPerHour} arrivals per hour, seed {seed}");
        Console.WriteLine("| allocator | free GPUs in wholly free nodes (mean over steps) | at the end | requests placed | multi-node requests placed |");
        Console.WriteLine("|---|---:|---:|---:|---:|");
        foreach (var (name, bestFit) in new[] { ("MetaCompute best fit", true), ("first fit", false) })
        {
            var inventory = InventoryGenerator.Generate(InventoryOptions.SinglePool(gpus, AllocationUnit.Gpu, seed));
            var nodes = inventory.Nodes.Select(n => new NodeSpec(n.Id, n.IslandId, n.RackId, true)).ToArray();
            var pool = new PoolOccupancy(nodes);
            var random = new Random(seed);
            var t0 = LoadedPool.Now;
            var placed = 0;
            var asked = 0;
            var bigPlaced = 0;
            var bigAsked = 0;
            var shareSum = 0.0;
            var last = 0.0;
            for (var step = 0; step < steps; step++)
            {
                var now = t0.AddHours(step);
                for (var k = 0; k < ArrivalsPerHour; k++)
                {
                    // Mostly small jobs with some multi-node ones: the mix that fragments a fleet.
                    var count = random.NextDouble() < 0.7 ? random.Next(1, 8) : 8 * random.Next(1, 9);
                    var request = new PlacementRequest(count, now, now.AddHours(random.Next(1, 25)));
                    asked++;
                    bigAsked += count >= 8 ? 1 : 0;
                    var gpusHeld = bestFit ? Allocator.Decide(pool, request).Placement?.Gpus : FirstFit(pool, nodes, request);
                    if (gpusHeld is not null)
                    {
                        pool.SetLease(new LeaseHold(Guid.NewGuid(), request.Start, request.End, gpusHeld));
                        placed++;
                        bigPlaced += count >= 8 ? 1 : 0;
                    }
                }

                last = WholeNodeShare(pool, nodes, now);
                shareSum += last;
            }

            Console.WriteLine($"| {name} | {100 * shareSum / steps:F1} % | {100 * last:F1} % | {100.0 * placed / asked:F1} % | {100.0 * bigPlaced / bigAsked:F1} % |");
        }
    }

    private static List<NodeGpus>? FirstFit(PoolOccupancy pool, NodeSpec[] nodes, PlacementRequest r)
    {
        var held = new List<NodeGpus>();
        if (r.GpuCount >= PoolOccupancy.GpusPerNode)
        {
            foreach (var n in nodes)
            {
                if (held.Count * 8 < r.GpuCount && pool.IsFree(n.NodeId, PoolOccupancy.FullNode, r.Start, r.End))
                {
                    held.Add(new NodeGpus(n.NodeId, PoolOccupancy.FullNode));
                }
            }

            return held.Count * 8 == r.GpuCount ? held : null;
        }

        foreach (var n in nodes)
        {
            byte mask = 0;
            for (var i = 0; i < 8 && BitOperations.PopCount(mask) < r.GpuCount; i++)
            {
                if (pool.IsFree(n.NodeId, (byte)(1 << i), r.Start, r.End))
                {
                    mask |= (byte)(1 << i);
                }
            }

            if (BitOperations.PopCount(mask) == r.GpuCount)
            {
                return [new NodeGpus(n.NodeId, mask)];
            }
        }

        return null;
    }

    private static double WholeNodeShare(PoolOccupancy pool, NodeSpec[] nodes, DateTimeOffset now)
    {
        var window = (now, now.AddMinutes(1));
        var free = 0;
        var inWholeNodes = 0;
        foreach (var n in nodes)
        {
            var count = Enumerable.Range(0, 8).Count(i => pool.IsFree(n.NodeId, (byte)(1 << i), window.Item1, window.Item2));
            free += count;
            inWholeNodes += count == 8 ? 8 : 0;
        }

        return free == 0 ? 1 : (double)inWholeNodes / free;
    }
}
