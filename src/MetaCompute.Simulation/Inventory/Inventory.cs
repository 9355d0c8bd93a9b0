namespace MetaCompute.Simulation.Inventory;

public sealed record RegionInfo(string Id, string DisplayName);

public sealed record SiteInfo(int Id, string RegionId, string Name);

public sealed record PoolInfo(string Id, string RegionId, string GpuModelId, AllocationUnit AllocationUnit);

/// <summary>One InfiniBand/RoCE domain; every node of an island belongs to the same pool.</summary>
public sealed record IslandInfo(int Id, int SiteId, string PoolId, string Name);

public sealed record RackInfo(int Id, int IslandId, string Name);

public sealed record NodeInfo(int Id, int RackId, int IslandId, string PoolId, string Hostname, bool Failed)
{
    /// <summary>GPU ids are derived from the node id, so a GPU belongs to exactly one node by construction.</summary>
    public long GpuId(int index) => (long)Id * InventoryOptions.GpusPerNode + index;
}

/// <summary>A generated data-centre fleet. Ids are dense and deterministic for a given <see cref="InventoryOptions"/>.</summary>
public sealed class Inventory
{
    public required IReadOnlyList<RegionInfo> Regions { get; init; }
    public required IReadOnlyList<SiteInfo> Sites { get; init; }
    public required IReadOnlyList<PoolInfo> Pools { get; init; }
    public required IReadOnlyList<IslandInfo> Islands { get; init; }
    public required IReadOnlyList<RackInfo> Racks { get; init; }
    public required IReadOnlyList<NodeInfo> Nodes { get; init; }

    public long GpuCount => (long)Nodes.Count * InventoryOptions.GpusPerNode;

    public IEnumerable<(long GpuId, int NodeId, int Index)> Gpus()
    {
        foreach (var node in Nodes)
        {
            for (var i = 0; i < InventoryOptions.GpusPerNode; i++)
            {
                yield return (node.GpuId(i), node.Id, i);
            }
        }
    }
}
