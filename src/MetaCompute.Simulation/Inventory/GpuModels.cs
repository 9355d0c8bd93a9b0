namespace MetaCompute.Simulation.Inventory;

/// <summary>A GPU model as sold: memory and the on-demand list price per GPU-hour in USD.</summary>
public sealed record GpuModelSpec(
    string Id,
    string DisplayName,
    string Vendor,
    int MemoryGb,
    decimal ListPricePerGpuHour,
    int NodesPerRack);

public static class GpuModels
{
    public static readonly GpuModelSpec H100 = new("h100-sxm-80gb", "NVIDIA H100 SXM 80GB", "nvidia", 80, 2.49m, 4);
    public static readonly GpuModelSpec H200 = new("h200-sxm-141gb", "NVIDIA H200 SXM 141GB", "nvidia", 141, 3.19m, 4);
    // Liquid-cooled B200 racks hold twice the nodes of air-cooled racks.
    public static readonly GpuModelSpec B200 = new("b200-sxm-192gb", "NVIDIA B200 SXM 192GB", "nvidia", 192, 4.99m, 8);
    public static readonly GpuModelSpec Mi300X = new("mi300x-192gb", "AMD Instinct MI300X 192GB", "amd", 192, 2.29m, 4);

    public static readonly IReadOnlyList<GpuModelSpec> All = [H100, H200, B200, Mi300X];

    public static GpuModelSpec Get(string id) =>
        All.FirstOrDefault(m => m.Id == id) ?? throw new ArgumentException($"Unknown GPU model '{id}'.", nameof(id));
}
