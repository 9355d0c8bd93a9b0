using System.Numerics;

namespace MetaCompute.Scheduling;

/// <summary>What a tenant asks for: GPUs over a fixed window, and whether all nodes must share one fabric island.</summary>
/// <param name="HoldbackGpus">GPUs this request may not touch (the pool's first-party holdback; 0 for internal demand).</param>
public sealed record PlacementRequest(int GpuCount, DateTimeOffset Start, DateTimeOffset End, bool SingleFabricIsland = false, int HoldbackGpus = 0);

public enum PlacementFailure
{
    /// <summary>Free healthy GPUs minus the holdback are fewer than asked for.</summary>
    PoolCannotSellMoreThanItHas,
    /// <summary>Enough GPUs are free, but not as enough wholly free nodes.</summary>
    NotEnoughWholeNodes,
    /// <summary>Enough whole nodes are free, but no single fabric island holds them all.</summary>
    NoSingleFabricIslandHasRoom,
    /// <summary>Enough GPUs are free, but no one node has that many free together.</summary>
    NoNodeHasEnoughFreeGpus,
}

public sealed record Placement(IReadOnlyList<NodeGpus> Gpus, IReadOnlyList<int> FabricIslandIds)
{
    public int GpuCount => Gpus.Sum(g => g.Count);
}

public sealed record PlacementDecision(Placement? Placement, PlacementFailure? Failure)
{
    public bool Placed => Placement is not null;
}

/// <summary>
/// The pure allocation decider. Requests of 8 GPUs or more take whole nodes; smaller ones take GPUs of one node.
/// Whole-node requests use the fewest fabric islands, then the fewest racks, and best fit at each level (the smallest
/// group that still fits), so the largest free blocks stay intact for the next large job. Small requests fill partly
/// used nodes first. Ties break by topology order, so the same input always gives the same answer.
/// </summary>
public static class Allocator
{
    public static PlacementDecision Decide(PoolOccupancy pool, PlacementRequest request)
    {
        if (request.GpuCount <= 0 || (request.GpuCount >= PoolOccupancy.GpusPerNode && request.GpuCount % PoolOccupancy.GpusPerNode != 0))
        {
            throw new ArgumentException("A request takes 1–7 GPUs or whole nodes (a multiple of 8).", nameof(request));
        }

        if (request.End <= request.Start)
        {
            throw new ArgumentException("The window must end after it starts.", nameof(request));
        }

        var start = request.Start.UtcTicks;
        var end = request.End.UtcTicks;
        var masks = new byte[pool.NodeCount];
        var freeNodesPerRack = new int[pool.RackRanges.Length];
        var freeNodesPerIsland = new int[pool.IslandRanges.Length];
        var freeGpus = 0;
        for (var pos = 0; pos < masks.Length; pos++)
        {
            if (!pool.IsAllocatable(pos))
            {
                continue;
            }

            var mask = pool.FreeMask(pos, start, end);
            masks[pos] = mask;
            freeGpus += BitOperations.PopCount(mask);
            if (mask == PoolOccupancy.FullNode)
            {
                freeNodesPerRack[pool.RackOfPosition[pos]]++;
                freeNodesPerIsland[pool.IslandOfPosition[pos]]++;
            }
        }

        // Counting only GPUs free for the whole window never oversells: a GPU busy for part of it counts as busy.
        if (freeGpus - request.HoldbackGpus < request.GpuCount)
        {
            return new PlacementDecision(null, PlacementFailure.PoolCannotSellMoreThanItHas);
        }

        return request.GpuCount >= PoolOccupancy.GpusPerNode
            ? PlaceWholeNodes(pool, request, masks, freeNodesPerIsland, freeNodesPerRack)
            : PlaceOnOneNode(pool, request.GpuCount, masks, freeNodesPerIsland);
    }

    /// <summary>GPUs on allocatable nodes free for the whole of <c>[start, end)</c>, counting <paramref name="ignoring"/>'s own as free.</summary>
    public static int FreeGpus(PoolOccupancy pool, DateTimeOffset start, DateTimeOffset end, Guid? ignoring = null)
    {
        var free = 0;
        for (var pos = 0; pos < pool.NodeCount; pos++)
        {
            if (pool.IsAllocatable(pos))
            {
                free += BitOperations.PopCount(pool.FreeMask(pos, start.UtcTicks, end.UtcTicks, ignoring));
            }
        }

        return free;
    }

    /// <summary>
    /// How a window's GPUs are used: busy at some time in it (on any node), free for all of it on nodes open to
    /// allocation, and idle on nodes that are not (draining or failed). The three add up to the pool's GPUs.
    /// </summary>
    public static (int Busy, int AllocatableFree, int ClosedIdle) Usage(PoolOccupancy pool, DateTimeOffset start, DateTimeOffset end)
    {
        int busy = 0, free = 0, closedIdle = 0;
        for (var pos = 0; pos < pool.NodeCount; pos++)
        {
            var idle = BitOperations.PopCount(pool.FreeMask(pos, start.UtcTicks, end.UtcTicks));
            busy += PoolOccupancy.GpusPerNode - idle;
            if (pool.IsAllocatable(pos))
            {
                free += idle;
            }
            else
            {
                closedIdle += idle;
            }
        }

        return (busy, free, closedIdle);
    }

    /// <summary>
    /// Where a lease's GPUs on a failed node can go for the rest of its period (from <paramref name="from"/>): the
    /// same number of GPUs on one other open node, in the same fabric island if any fits, then anywhere in the pool;
    /// best fit within each, then topology order. Null when nothing fits.
    /// </summary>
    public static NodeGpus? Rehome(PoolOccupancy pool, LeaseHold hold, int failedNodeId, DateTimeOffset from)
    {
        var lost = hold.Gpus.Single(g => g.NodeId == failedNodeId);
        var start = Math.Max(hold.Start.UtcTicks, from.UtcTicks);
        var end = hold.End.UtcTicks;
        var island = pool.IslandOfPosition[pool.PositionOf(failedNodeId)];
        var held = hold.Gpus.Select(g => g.NodeId).ToHashSet();
        var best = -1;
        (int OtherIsland, int Free) bestScore = (int.MaxValue, int.MaxValue);
        for (var pos = 0; pos < pool.NodeCount; pos++)
        {
            if (!pool.IsAllocatable(pos) || held.Contains(pool.NodeIds[pos]))
            {
                continue;
            }

            var free = BitOperations.PopCount(pool.FreeMask(pos, start, end));
            var score = (pool.IslandOfPosition[pos] == island ? 0 : 1, free);
            if (free >= lost.Count && score.CompareTo(bestScore) < 0)
            {
                best = pos;
                bestScore = score;
            }
        }

        return best < 0 ? null : new NodeGpus(pool.NodeIds[best], LowestBits(pool.FreeMask(best, start, end), lost.Count));
    }

    private static PlacementDecision PlaceWholeNodes(PoolOccupancy pool, PlacementRequest request, byte[] masks, int[] freeNodesPerIsland,
        int[] freeNodesPerRack)
    {
        var nodesNeeded = request.GpuCount / PoolOccupancy.GpusPerNode;
        if (freeNodesPerIsland.Sum() < nodesNeeded)
        {
            return new PlacementDecision(null, PlacementFailure.NotEnoughWholeNodes);
        }

        var islands = ChooseGroups(freeNodesPerIsland, Enumerable.Range(0, freeNodesPerIsland.Length), nodesNeeded);
        if (request.SingleFabricIsland && islands.Count > 1)
        {
            return new PlacementDecision(null, PlacementFailure.NoSingleFabricIslandHasRoom);
        }

        var chosen = new List<NodeGpus>(nodesNeeded);
        foreach (var (island, take) in islands)
        {
            var (firstRack, lastRack) = RacksOf(pool, island);
            foreach (var (rack, takeFromRack) in ChooseGroups(freeNodesPerRack, Enumerable.Range(firstRack, lastRack - firstRack), take))
            {
                var (from, to) = pool.RackRanges[rack];
                var taken = 0;
                for (var pos = from; pos < to && taken < takeFromRack; pos++)
                {
                    if (masks[pos] == PoolOccupancy.FullNode && pool.IsAllocatable(pos))
                    {
                        chosen.Add(new NodeGpus(pool.NodeIds[pos], PoolOccupancy.FullNode));
                        taken++;
                    }
                }
            }
        }

        return new PlacementDecision(new Placement(chosen, islands.Select(i => pool.IslandIds[i.Group]).ToList()), null);
    }

    private static PlacementDecision PlaceOnOneNode(PoolOccupancy pool, int gpuCount, byte[] masks, int[] freeNodesPerIsland)
    {
        var best = -1;
        (int Free, int IslandFree) bestScore = (int.MaxValue, int.MaxValue);
        for (var pos = 0; pos < masks.Length; pos++)
        {
            var free = BitOperations.PopCount(masks[pos]);
            if (free < gpuCount || !pool.IsAllocatable(pos))
            {
                continue;
            }

            // Fewest free GPUs first (fill partly used nodes); among whole free nodes, the island with the fewest.
            var score = (free, free == PoolOccupancy.GpusPerNode ? freeNodesPerIsland[pool.IslandOfPosition[pos]] : 0);
            if (score.CompareTo(bestScore) < 0)
            {
                best = pos;
                bestScore = score;
                if (free == gpuCount)
                {
                    break;
                }
            }
        }

        if (best < 0)
        {
            return new PlacementDecision(null, PlacementFailure.NoNodeHasEnoughFreeGpus);
        }

        var mask = LowestBits(masks[best], gpuCount);
        return new PlacementDecision(
            new Placement([new NodeGpus(pool.NodeIds[best], mask)], [pool.IslandIds[pool.IslandOfPosition[best]]]), null);
    }

    /// <summary>
    /// Picks groups (islands or racks) to supply <paramref name="needed"/> nodes: the smallest single group that fits;
    /// otherwise the largest groups first, finishing with the smallest group that covers the rest.
    /// </summary>
    internal static List<(int Group, int Take)> ChooseGroups(int[] free, IEnumerable<int> groups, int needed)
    {
        var candidates = groups.Where(g => free[g] > 0).ToList();
        var chosen = new List<(int Group, int Take)>();
        while (needed > 0)
        {
            var fit = -1;
            var largest = -1;
            foreach (var g in candidates)
            {
                if (free[g] >= needed && (fit < 0 || free[g] < free[fit]))
                {
                    fit = g;
                }

                if (largest < 0 || free[g] > free[largest])
                {
                    largest = g;
                }
            }

            if (fit >= 0)
            {
                chosen.Add((fit, needed));
                break;
            }

            if (largest < 0)
            {
                throw new InvalidOperationException("Groups hold fewer free nodes than counted.");
            }

            chosen.Add((largest, free[largest]));
            needed -= free[largest];
            candidates.Remove(largest);
        }

        return chosen;
    }

    private static (int FirstRack, int EndRack) RacksOf(PoolOccupancy pool, int island)
    {
        var (start, end) = pool.IslandRanges[island];
        return (pool.RackOfPosition[start], pool.RackOfPosition[end - 1] + 1);
    }

    private static byte LowestBits(byte mask, int count)
    {
        byte result = 0;
        for (var i = 0; i < PoolOccupancy.GpusPerNode && count > 0; i++)
        {
            if ((mask & (1 << i)) != 0)
            {
                result |= (byte)(1 << i);
                count--;
            }
        }

        return result;
    }
}
