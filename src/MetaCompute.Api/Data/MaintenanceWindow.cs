using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using NpgsqlTypes;

namespace MetaCompute.Api.Data;

/// <summary>
/// A planned period when a node takes no allocations. The scheduler's index treats it as a hold on all 8 GPUs; the
/// database refuses any allocation that overlaps it (a trigger) and any two windows on a node that overlap (an
/// exclusion constraint).
/// </summary>
public sealed class MaintenanceWindow
{
    public Guid Id { get; init; }
    public int NodeId { get; init; }
    public required string PoolId { get; init; }
    public NpgsqlRange<DateTime> Period { get; init; }
    public required string Reason { get; init; }
    public string? CreatedBy { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
}

public sealed class MaintenanceWindowConfiguration : IEntityTypeConfiguration<MaintenanceWindow>
{
    public void Configure(EntityTypeBuilder<MaintenanceWindow> b)
    {
        b.Property(w => w.Id).ValueGeneratedNever();
        b.Property(w => w.Period).HasColumnType("tstzrange");
        b.Property(w => w.Reason).HasMaxLength(500);
        b.Property(w => w.CreatedBy).HasMaxLength(100);
        b.HasOne<Node>().WithMany().HasForeignKey(w => w.NodeId);
        b.HasOne<Pool>().WithMany().HasForeignKey(w => w.PoolId);
        b.HasIndex(w => w.PoolId);
        // The exclusion constraint and the allocation trigger are added in the migration: EF cannot express them.
    }
}
