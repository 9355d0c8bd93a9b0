using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using NpgsqlTypes;

namespace MetaCompute.Api.Data;

public enum ReservationTier
{
    /// <summary>A future-dated block, never preempted.</summary>
    Reserved,
    /// <summary>Starts now, never preempted.</summary>
    OnDemand,
    /// <summary>Surplus at a discount; first-party demand may recall it with notice.</summary>
    Spot,
    /// <summary>First-party demand.</summary>
    Internal,
}

public enum ReservationStatus
{
    Pending,
    Scheduled,
    Active,
    Completed,
    Cancelled,
    Rejected,
    Recalled,
    Failed,
}

public sealed class Reservation
{
    public Guid Id { get; init; }
    public Guid TenantId { get; init; }
    public required string PoolId { get; init; }
    public ReservationTier Tier { get; init; }
    public ReservationStatus Status { get; set; }
    public int GpuCount { get; init; }
    public DateTimeOffset StartAt { get; set; }
    public DateTimeOffset EndAt { get; set; }
    public bool SingleFabricIsland { get; init; }
    /// <summary>The price it was sold at; later list-price changes never touch it.</summary>
    public decimal PricePerGpuHour { get; init; }
    public decimal TotalPrice { get; set; }
    public required string Currency { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset UpdatedAt { get; set; }
    public DateTimeOffset? CancelledAt { get; set; }
    /// <summary>When the scheduler sent <c>reservation.ending_soon</c>; set once, so a re-run tick sends nothing.</summary>
    public DateTimeOffset? EndingSoonNotifiedAt { get; set; }
    /// <summary>A pending request's deadline: not admitted by then, it is rejected.</summary>
    public DateTimeOffset? WaitUntil { get; set; }
    /// <summary>When a recalled spot reservation gives its GPUs back (its end was moved here); set with the notice.</summary>
    public DateTimeOffset? RecallAt { get; set; }
    public uint Version { get; set; }
    public Lease? Lease { get; set; }
}

/// <summary>The grant behind a scheduled or active reservation: concrete GPUs (its allocations) over a period.</summary>
public sealed class Lease
{
    public Guid Id { get; init; }
    public Guid ReservationId { get; init; }
    public required string PoolId { get; init; }
    public DateTimeOffset StartAt { get; set; }
    public DateTimeOffset EndAt { get; set; }
    public DateTimeOffset CreatedAt { get; init; }
    /// <summary>Set when a failed node's GPUs could not be re-homed: the lease runs short of GPUs from then on.</summary>
    public DateTimeOffset? DegradedSince { get; set; }
}

/// <summary>GPUs a lease lost without a replacement (a failed node with no spare, forced maintenance), from a time on; credited.</summary>
public sealed class LeaseLoss
{
    public long Id { get; init; }
    public Guid LeaseId { get; init; }
    public int NodeId { get; init; }
    public int GpuCount { get; init; }
    public DateTimeOffset Since { get; init; }
}

/// <summary>One GPU held by a lease over a period. The exclusion constraint on this table makes double booking impossible.</summary>
public sealed class Allocation
{
    public long Id { get; init; }
    public Guid LeaseId { get; init; }
    public long GpuId { get; init; }
    public int NodeId { get; init; }
    public NpgsqlRange<DateTime> Period { get; set; }
}

public sealed class TenantQuota
{
    public Guid TenantId { get; init; }
    public required string PoolId { get; init; }
    public int MaxConcurrentGpus { get; set; }
}

public sealed class ReservationConfiguration :
    IEntityTypeConfiguration<Reservation>, IEntityTypeConfiguration<Lease>, IEntityTypeConfiguration<Allocation>,
    IEntityTypeConfiguration<TenantQuota>, IEntityTypeConfiguration<LeaseLoss>
{
    public void Configure(EntityTypeBuilder<LeaseLoss> b)
    {
        b.Property(l => l.Id).UseIdentityAlwaysColumn();
        b.HasOne<Lease>().WithMany().HasForeignKey(l => l.LeaseId);
        b.HasIndex(l => l.LeaseId);
        b.ToTable(t => t.HasCheckConstraint("ck_lease_losses_gpu_count", "gpu_count BETWEEN 1 AND 8"));
    }

    private const string UnfinishedFilter = "status IN ('Pending', 'Scheduled', 'Active')";

    public void Configure(EntityTypeBuilder<Reservation> b)
    {
        b.Property(r => r.Id).ValueGeneratedNever();
        b.Property(r => r.Tier).HasConversion<string>().HasMaxLength(16);
        b.Property(r => r.Status).HasConversion<string>().HasMaxLength(16);
        b.Property(r => r.PricePerGpuHour).HasPrecision(12, 6);
        b.Property(r => r.TotalPrice).HasPrecision(18, 6);
        b.Property(r => r.Currency).HasMaxLength(3);
        b.Property(r => r.Version).IsRowVersion();
        b.HasOne<Tenant>().WithMany().HasForeignKey(r => r.TenantId);
        b.HasOne<Pool>().WithMany().HasForeignKey(r => r.PoolId);
        b.HasOne(r => r.Lease).WithOne().HasForeignKey<Lease>(l => l.ReservationId);
        b.HasIndex(r => new { r.TenantId, r.Id });
        // Every booking's quota sweep reads its tenant's live reservations in the pool: a small part of the pool's history,
        // which this index holds alone, however stale the planner's statistics of a fast-growing table are.
        b.HasIndex(r => new { r.PoolId, r.TenantId }).HasFilter("status IN ('Scheduled', 'Active')");
        // The scheduler's sweeps (admission, activation, recall, expiry) look only for reservations not yet finished. A
        // cancelled or completed one leaves these indexes, so ending a reservation writes two index entries fewer.
        b.HasIndex(r => new { r.Status, r.StartAt }).HasFilter(UnfinishedFilter);
        b.HasIndex(r => new { r.Status, r.EndAt }).HasFilter(UnfinishedFilter);
        b.ToTable(t =>
        {
            t.HasCheckConstraint("ck_reservations_window", "end_at > start_at");
            t.HasCheckConstraint("ck_reservations_gpu_count", "gpu_count > 0");
            t.HasCheckConstraint("ck_reservations_pending_has_deadline", "status <> 'Pending' OR wait_until IS NOT NULL");
        });
    }

    public void Configure(EntityTypeBuilder<Lease> b)
    {
        b.Property(l => l.Id).ValueGeneratedNever();
        b.HasOne<Pool>().WithMany().HasForeignKey(l => l.PoolId);
        b.HasIndex(l => l.ReservationId).IsUnique();
    }

    public void Configure(EntityTypeBuilder<Allocation> b)
    {
        b.Property(a => a.Id).UseIdentityAlwaysColumn();
        b.Property(a => a.Period).HasColumnType("tstzrange");
        b.HasOne<Lease>().WithMany().HasForeignKey(a => a.LeaseId);
        b.HasOne<Gpu>().WithMany().HasForeignKey(a => a.GpuId);
        b.HasOne<Node>().WithMany().HasForeignKey(a => a.NodeId);
        b.HasIndex(a => a.LeaseId);
        // The exclusion constraint (gpu_id WITH =, period WITH &&) is added in the migration: EF cannot express it.
    }

    public void Configure(EntityTypeBuilder<TenantQuota> b)
    {
        b.HasKey(q => new { q.TenantId, q.PoolId });
        b.HasOne<Tenant>().WithMany().HasForeignKey(q => q.TenantId);
        b.HasOne<Pool>().WithMany().HasForeignKey(q => q.PoolId);
        b.ToTable(t => t.HasCheckConstraint("ck_tenant_quotas_non_negative", "max_concurrent_gpus >= 0"));
    }
}
