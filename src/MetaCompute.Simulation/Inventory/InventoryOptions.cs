namespace MetaCompute.Simulation.Inventory;

/// <summary>One pool to generate: a GPU model in a region, with its share of the fleet.</summary>
public sealed record PoolPlan(string GpuModelId, double Weight, AllocationUnit AllocationUnit);

public sealed record RegionPlan(string Id, string DisplayName, IReadOnlyList<string> Sites, IReadOnlyList<PoolPlan> Pools);

public sealed record InventoryOptions
{
    public const int GpusPerNode = 8;

    /// <summary>Total GPUs to generate; rounded down to whole nodes.</summary>
    public int TargetGpus { get; init; } = 4096;

    public int Seed { get; init; } = 42;

    /// <summary>Share of nodes generated as failed, so healthy and total capacity differ as in a real fleet.</summary>
    public double FailedNodeShare { get; init; } = 0.01;

    /// <summary>Largest fabric island in nodes (256 nodes = 2,048 GPUs, one InfiniBand domain).</summary>
    public int MaxIslandNodes { get; init; } = 256;

    public IReadOnlyList<RegionPlan> Regions { get; init; } = DefaultRegions;

    public static readonly IReadOnlyList<RegionPlan> DefaultRegions =
    [
        new("us-ohio-1", "US East (Ohio)", ["oh1a", "oh1b"],
        [
            new(GpuModels.H100.Id, 0.35, AllocationUnit.Gpu),
            new(GpuModels.H200.Id, 0.25, AllocationUnit.Node),
        ]),
        new("eu-dublin-1", "Europe (Dublin)", ["db1a", "db1b"],
        [
            new(GpuModels.B200.Id, 0.25, AllocationUnit.Node),
            new(GpuModels.Mi300X.Id, 0.15, AllocationUnit.Gpu),
        ]),
    ];

    /// <summary>A one-region, one-pool fleet: the smallest useful inventory for tests.</summary>
    public static InventoryOptions SinglePool(int gpus, AllocationUnit unit = AllocationUnit.Gpu, int seed = 1,
        string gpuModelId = "h100-sxm-80gb", double failedNodeShare = 0) => new()
    {
        TargetGpus = gpus,
        Seed = seed,
        FailedNodeShare = failedNodeShare,
        Regions = [new("test-1", "Test region", ["ts1a"], [new(gpuModelId, 1, unit)])],
    };
}

public enum AllocationUnit
{
    /// <summary>Single GPUs may be sold; requests of 8 or more still take whole nodes.</summary>
    Gpu,
    /// <summary>Only whole nodes (multiples of 8 GPUs) are sold.</summary>
    Node,
}
