using MetaCompute.Api.Data;
using MetaCompute.Simulation.Inventory;

namespace MetaCompute.Api.Catalog;

public sealed record GpuModelResponse(string Id, string DisplayName, string Vendor, int MemoryGb, decimal ListPricePerGpuHour, string Currency);

public sealed record SiteResponse(string Id, string Name);

public sealed record RegionResponse(string Id, string DisplayName, IReadOnlyList<SiteResponse> Sites);

public sealed record PoolRulesResponse(
    int MinGpus, int MaxGpus, int MinDurationHours, int MaxDurationHours, int MaxStartAheadDays, int HoldbackGpus, int RecallNoticeSeconds);

public sealed record PoolPricesResponse(decimal OnDemand, decimal Reserved, decimal Spot, decimal Internal, string Currency);

public sealed record PoolResponse(
    string Id,
    string Region,
    string GpuModel,
    AllocationUnit AllocationUnit,
    int TotalGpus,
    int HealthyGpus,
    PoolRulesResponse Rules,
    PoolPricesResponse Prices);

public static class CatalogMapping
{
    public const string Currency = "USD";

    public static GpuModelResponse ToResponse(this GpuModel m) =>
        new(m.Id, m.DisplayName, m.Vendor, m.MemoryGb, m.ListPricePerGpuHour, Currency);

    public static RegionResponse ToResponse(this Region r) =>
        new(r.Id, r.DisplayName, r.Sites.OrderBy(s => s.Name).Select(s => new SiteResponse(s.Name, s.Name)).ToList());

    public static PoolResponse ToResponse(this Pool p, PoolCapacity capacity) => new(
        p.Id,
        p.RegionId,
        p.GpuModelId,
        p.AllocationUnit,
        capacity.TotalGpus,
        capacity.HealthyGpus,
        new PoolRulesResponse(p.Rules.MinGpus, p.Rules.MaxGpus, p.Rules.MinDurationHours, p.Rules.MaxDurationHours,
            p.Rules.MaxStartAheadDays, p.Rules.HoldbackGpus, p.Rules.RecallNoticeSeconds),
        new PoolPricesResponse(p.Prices.OnDemand, p.Prices.Reserved, p.Prices.Spot, p.Prices.Internal, Currency));
}
