using System.Numerics;

namespace MetaCompute.Scheduling;

/// <summary>A node as the engine sees it: where it sits and whether it may take new allocations.</summary>
public readonly record struct NodeSpec(int NodeId, int IslandId, int RackId, bool Allocatable);

/// <summary>The GPUs a lease holds on one node, as a bit mask over the node's 8 GPU indices.</summary>
public readonly record struct NodeGpus(int NodeId, byte Mask)
{
    public int Count => BitOperations.PopCount(Mask);

    public IEnumerable<int> Indices()
    {
        for (var i = 0; i < PoolOccupancy.GpusPerNode; i++)
        {
            if ((Mask & (1 << i)) != 0)
            {
                yield return i;
            }
        }
    }
}

/// <summary>A lease's hold on the pool: which GPUs, over which period <c>[Start, End)</c>.</summary>
public sealed record LeaseHold(Guid LeaseId, DateTimeOffset Start, DateTimeOffset End, IReadOnlyList<NodeGpus> Gpus);

/// <summary>
/// The engine's in-memory index of one pool: its nodes in topology order (island, rack, node) and, per node, the
/// periods its GPUs are busy. The process that decides keeps one per pool and applies changes incrementally; the
/// database's exclusion constraint remains the proof that no GPU is booked twice.
/// </summary>
public sealed class PoolOccupancy
{
    public const int GpusPerNode = 8;
    public const byte FullNode = 0xFF;

    private readonly Dictionary<int, int> _positionOfNode = [];
    private readonly NodeTimeline[] _busy;
    private readonly bool[] _allocatable;
    private readonly Dictionary<Guid, LeaseHold> _leases = [];

    // Every hold's end as it was set, earliest first; an entry whose lease has since moved its end or gone is skipped
    // when it comes up. Forget then reads only the holds that ended, not every hold in the pool.
    private readonly PriorityQueue<Guid, long> _ends = new();

    public PoolOccupancy(IEnumerable<NodeSpec> nodes)
    {
        var ordered = nodes.OrderBy(n => n.IslandId).ThenBy(n => n.RackId).ThenBy(n => n.NodeId).ToArray();
        NodeIds = ordered.Select(n => n.NodeId).ToArray();
        _allocatable = ordered.Select(n => n.Allocatable).ToArray();
        _busy = ordered.Select(_ => new NodeTimeline()).ToArray();

        // Islands and racks become dense ranges of positions, so the allocator can walk them without lookups.
        IslandIds = ordered.Select(n => n.IslandId).Distinct().ToArray();
        IslandOfPosition = new int[ordered.Length];
        RackOfPosition = new int[ordered.Length];
        var islands = new List<(int Start, int End)>();
        var racks = new List<(int Start, int End)>();
        var rackIslands = new List<int>();
        for (var pos = 0; pos < ordered.Length; pos++)
        {
            _positionOfNode.Add(ordered[pos].NodeId, pos);
            if (pos == 0 || ordered[pos].IslandId != ordered[pos - 1].IslandId)
            {
                islands.Add((pos, pos));
            }

            if (pos == 0 || ordered[pos].RackId != ordered[pos - 1].RackId || ordered[pos].IslandId != ordered[pos - 1].IslandId)
            {
                racks.Add((pos, pos));
                rackIslands.Add(islands.Count - 1);
            }

            islands[^1] = (islands[^1].Start, pos + 1);
            racks[^1] = (racks[^1].Start, pos + 1);
            IslandOfPosition[pos] = islands.Count - 1;
            RackOfPosition[pos] = racks.Count - 1;
        }

        IslandRanges = islands.ToArray();
        RackRanges = racks.ToArray();
        IslandOfRack = rackIslands.ToArray();
    }

    /// <summary>The change-log version this index reflects; the caller catches up from here.</summary>
    public long Version { get; set; }

    public int NodeCount => NodeIds.Length;

    public int LeaseCount => _leases.Count;

    internal int[] NodeIds { get; }
    internal int[] IslandIds { get; }
    internal int[] IslandOfPosition { get; }
    internal int[] RackOfPosition { get; }
    internal (int Start, int End)[] IslandRanges { get; }
    internal (int Start, int End)[] RackRanges { get; }
    internal int[] IslandOfRack { get; }

    public LeaseHold? Lease(Guid leaseId) => _leases.GetValueOrDefault(leaseId);

    /// <summary>Adds a lease or replaces its previous hold (an extension, a shortened end, a move).</summary>
    public void SetLease(LeaseHold lease)
    {
        RemoveLease(lease.LeaseId);
        if (lease.End <= lease.Start || lease.Gpus.Count == 0)
        {
            return;
        }

        _leases[lease.LeaseId] = lease;
        _ends.Enqueue(lease.LeaseId, lease.End.UtcTicks);
        foreach (var gpus in lease.Gpus)
        {
            if (_positionOfNode.TryGetValue(gpus.NodeId, out var pos))
            {
                _busy[pos].Add(lease.Start.UtcTicks, lease.End.UtcTicks, gpus.Mask, lease.LeaseId);
            }
        }
    }

    public bool RemoveLease(Guid leaseId)
    {
        if (!_leases.Remove(leaseId, out var old))
        {
            return false;
        }

        foreach (var gpus in old.Gpus)
        {
            if (_positionOfNode.TryGetValue(gpus.NodeId, out var pos))
            {
                _busy[pos].Remove(leaseId, old.Start.UtcTicks);
            }
        }

        return true;
    }

    public void SetAllocatable(int nodeId, bool allocatable)
    {
        if (_positionOfNode.TryGetValue(nodeId, out var pos))
        {
            _allocatable[pos] = allocatable;
        }
    }

    /// <summary>Forgets holds that ended at or before <paramref name="before"/>; they can no longer conflict.</summary>
    public void Forget(DateTimeOffset before)
    {
        // Every batch calls this: when nothing has ended it costs one look at the queue and allocates nothing.
        if (!_ends.TryPeek(out _, out var first) || first > before.UtcTicks)
        {
            return;
        }

        // The oldest holds sit at the front of their nodes' timelines, so each node is compacted once for all of them
        // rather than shifted once per hold.
        HashSet<Guid> forgotten = [];
        HashSet<int> nodes = [];

        while (_ends.TryPeek(out var leaseId, out var end) && end <= before.UtcTicks)
        {
            _ends.Dequeue();
            if (_leases.TryGetValue(leaseId, out var lease) && lease.End <= before && forgotten.Add(leaseId))
            {
                _leases.Remove(leaseId);
                foreach (var gpus in lease.Gpus)
                {
                    if (_positionOfNode.TryGetValue(gpus.NodeId, out var pos))
                    {
                        nodes.Add(pos);
                    }
                }
            }
        }

        foreach (var pos in nodes)
        {
            _busy[pos].RemoveAll(forgotten);
        }
    }

    internal bool IsAllocatable(int pos) => _allocatable[pos];

    /// <summary>Whether all of <paramref name="mask"/>'s GPUs on the node are free for the whole of <c>[start, end)</c>.</summary>
    public bool IsFree(int nodeId, byte mask, DateTimeOffset start, DateTimeOffset end) =>
        (FreeMask(_positionOfNode[nodeId], start.UtcTicks, end.UtcTicks) & mask) == mask;

    /// <summary>GPUs of the node at <paramref name="pos"/> free for the whole of <c>[start, end)</c>.</summary>
    internal byte FreeMask(int pos, long start, long end, Guid? ignoring = null) => (byte)~_busy[pos].BusyMask(start, end, ignoring);

    /// <summary>Earliest start at or after <paramref name="from"/> of another hold on any of <paramref name="mask"/>'s GPUs.</summary>
    internal long NextBusyStart(int nodeId, byte mask, long from, Guid ignoring) =>
        _busy[_positionOfNode[nodeId]].NextBusyStart(mask, from, ignoring);

    internal int PositionOf(int nodeId) => _positionOfNode[nodeId];

    public bool HasNode(int nodeId) => _positionOfNode.ContainsKey(nodeId);

    /// <summary>The fabric island a node belongs to.</summary>
    public int IslandOf(int nodeId) => IslandIds[IslandOfPosition[_positionOfNode[nodeId]]];

    /// <summary>The holds with GPUs on the node, earliest start first.</summary>
    public IReadOnlyList<LeaseHold> LeasesOn(int nodeId) =>
        _busy[_positionOfNode[nodeId]].Leases().Distinct().Select(id => _leases[id]).OrderBy(l => l.Start).ThenBy(l => l.LeaseId).ToList();

    internal IEnumerable<long> BusyEnds() => _busy.SelectMany(b => b.Ends());
}
