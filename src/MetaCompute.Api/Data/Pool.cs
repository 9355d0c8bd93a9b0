using MetaCompute.Simulation.Inventory;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace MetaCompute.Api.Data;

/// <summary>What is sold: one GPU model in one region, with its rules and list prices.</summary>
public sealed class Pool
{
    public required string Id { get; init; }
    public required string RegionId { get; init; }
    public required string GpuModelId { get; init; }
    public AllocationUnit AllocationUnit { get; set; }
    public required PoolRules Rules { get; set; }
    public required PoolPrices Prices { get; set; }
    public uint Version { get; set; }
}

public sealed record PoolRules
{
    public int MinGpus { get; set; } = 1;
    public int MaxGpus { get; set; } = 1024;
    public int MinDurationHours { get; set; } = 1;
    public int MaxDurationHours { get; set; } = 24 * 28;
    /// <summary>How far ahead a reservation may start (EC2 Capacity Blocks allow 8 weeks).</summary>
    public int MaxStartAheadDays { get; set; } = 56;
    /// <summary>GPUs kept for first-party demand; only internal reservations may use them.</summary>
    public int HoldbackGpus { get; set; }
    public int RecallNoticeSeconds { get; set; } = 120;
}

/// <summary>List prices per GPU-hour in USD, exact to the micro-dollar.</summary>
public sealed record PoolPrices
{
    public decimal OnDemand { get; set; }
    public decimal Reserved { get; set; }
    public decimal Spot { get; set; }
    public decimal Internal { get; set; }
}

public sealed class PoolConfiguration : IEntityTypeConfiguration<Pool>
{
    public void Configure(EntityTypeBuilder<Pool> b)
    {
        b.Property(p => p.AllocationUnit).HasConversion<string>().HasMaxLength(8);
        b.Property(p => p.Version).IsRowVersion();
        b.HasOne<Region>().WithMany().HasForeignKey(p => p.RegionId);
        b.HasOne<GpuModel>().WithMany().HasForeignKey(p => p.GpuModelId);
        b.ComplexProperty(p => p.Rules);
        b.ComplexProperty(p => p.Prices, prices =>
        {
            prices.Property(x => x.OnDemand).HasPrecision(12, 6);
            prices.Property(x => x.Reserved).HasPrecision(12, 6);
            prices.Property(x => x.Spot).HasPrecision(12, 6);
            prices.Property(x => x.Internal).HasPrecision(12, 6);
        });
        b.ToTable(t =>
        {
            t.HasCheckConstraint("ck_pools_gpu_bounds", "rules_min_gpus >= 1 AND rules_max_gpus >= rules_min_gpus");
            t.HasCheckConstraint("ck_pools_duration_bounds", "rules_min_duration_hours >= 1 AND rules_max_duration_hours >= rules_min_duration_hours");
            t.HasCheckConstraint("ck_pools_holdback_non_negative", "rules_holdback_gpus >= 0");
        });
    }
}
