using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace MetaCompute.Api.Data;

public enum ChargeKind
{
    /// <summary>A reserved block, charged for its whole window when it is booked.</summary>
    Reservation,
    /// <summary>A reserved block's extension, charged when it is made.</summary>
    Extension,
    /// <summary>Money back for a reserved block cancelled before its start (negative).</summary>
    Refund,
    /// <summary>An hour of metered use of an on-demand, spot or internal reservation.</summary>
    Usage,
    /// <summary>An hour of an SLA credit (negative): GPUs a lease lost to a failure or maintenance.</summary>
    Credit,
}

/// <summary>
/// The ledger: every amount a tenant is charged or given back, appended when it happens and never changed. Invoices,
/// usage answers and revenue are sums over it. Metered rows carry their hour, and (reservation, kind, hour) is unique,
/// so a tick that runs twice cannot charge twice.
/// </summary>
public sealed class Charge
{
    public long Id { get; init; }
    public Guid TenantId { get; init; }
    public Guid ReservationId { get; init; }
    public required string PoolId { get; init; }
    public ChargeKind Kind { get; init; }
    public DateTimeOffset? Hour { get; init; }
    public decimal? GpuSeconds { get; init; }
    public decimal Amount { get; init; }
    public DateTimeOffset OccurredAt { get; init; }
}

/// <summary>GPU-seconds a reservation held in one hour, metered once the hour has closed.</summary>
public sealed class UsageRecord
{
    public Guid ReservationId { get; init; }
    public DateTimeOffset Hour { get; init; }
    public Guid TenantId { get; init; }
    public required string PoolId { get; init; }
    public decimal GpuSeconds { get; init; }
}

/// <summary>How far metering has got: every hour before <see cref="MeteredUntil"/> is metered.</summary>
public sealed class MeteringState
{
    public int Id { get; init; }
    public DateTimeOffset MeteredUntil { get; set; }
    /// <summary>Every month before this has its invoices written; null until the first charge.</summary>
    public DateTimeOffset? InvoicedUntil { get; set; }
}

/// <summary>A closed month's invoice: a snapshot of the ledger, written once when the month closes and never changed.</summary>
public sealed class Invoice
{
    public Guid Id { get; init; }
    public Guid TenantId { get; init; }
    public DateTimeOffset Month { get; init; }
    public decimal Charges { get; init; }
    public decimal Credits { get; init; }
    public decimal Total { get; init; }
    public DateTimeOffset ClosedAt { get; init; }
    public List<InvoiceLine> Lines { get; init; } = [];
}

public sealed class InvoiceLine
{
    public long Id { get; init; }
    public Guid InvoiceId { get; init; }
    public Guid ReservationId { get; init; }
    public required string PoolId { get; init; }
    /// <summary><c>charges</c> (the reservation's charges and refunds that month) or <c>credit</c>.</summary>
    public required string Kind { get; init; }
    public decimal GpuSeconds { get; init; }
    public decimal Amount { get; init; }
}

public sealed class BillingConfiguration :
    IEntityTypeConfiguration<Charge>, IEntityTypeConfiguration<UsageRecord>, IEntityTypeConfiguration<MeteringState>,
    IEntityTypeConfiguration<Invoice>, IEntityTypeConfiguration<InvoiceLine>
{
    public void Configure(EntityTypeBuilder<Charge> b)
    {
        b.Property(c => c.Id).UseIdentityAlwaysColumn();
        b.Property(c => c.Kind).HasConversion<string>().HasMaxLength(16);
        b.Property(c => c.Amount).HasPrecision(18, 6);
        b.Property(c => c.GpuSeconds).HasPrecision(18, 6);
        b.HasOne<Tenant>().WithMany().HasForeignKey(c => c.TenantId);
        b.HasOne<Reservation>().WithMany().HasForeignKey(c => c.ReservationId);
        b.HasIndex(c => new { c.ReservationId, c.Kind, c.Hour }).IsUnique().HasFilter("hour IS NOT NULL");
        b.HasIndex(c => new { c.TenantId, c.OccurredAt });
        b.HasIndex(c => new { c.PoolId, c.OccurredAt });
    }

    public void Configure(EntityTypeBuilder<UsageRecord> b)
    {
        b.HasKey(u => new { u.ReservationId, u.Hour });
        b.Property(u => u.GpuSeconds).HasPrecision(18, 6);
        b.HasOne<Reservation>().WithMany().HasForeignKey(u => u.ReservationId);
        b.HasIndex(u => new { u.TenantId, u.Hour });
    }

    public void Configure(EntityTypeBuilder<MeteringState> b) => b.Property(m => m.Id).ValueGeneratedNever();

    public void Configure(EntityTypeBuilder<Invoice> b)
    {
        b.Property(i => i.Id).ValueGeneratedNever();
        b.Property(i => i.Charges).HasPrecision(18, 6);
        b.Property(i => i.Credits).HasPrecision(18, 6);
        b.Property(i => i.Total).HasPrecision(18, 6);
        b.HasOne<Tenant>().WithMany().HasForeignKey(i => i.TenantId);
        b.HasIndex(i => new { i.TenantId, i.Month }).IsUnique();
        b.HasMany(i => i.Lines).WithOne().HasForeignKey(l => l.InvoiceId);
    }

    public void Configure(EntityTypeBuilder<InvoiceLine> b)
    {
        b.Property(l => l.Id).UseIdentityAlwaysColumn();
        b.Property(l => l.Kind).HasMaxLength(16);
        b.Property(l => l.GpuSeconds).HasPrecision(18, 6);
        b.Property(l => l.Amount).HasPrecision(18, 6);
    }
}
