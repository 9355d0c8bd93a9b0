using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace MetaCompute.Api.Data;

/// <summary>A state change, appended in the same transaction as the change. The tenant's feed and the audit trail read it.</summary>
public sealed class Event
{
    public long Id { get; init; }
    public Guid? TenantId { get; init; }
    public Guid? ReservationId { get; init; }
    public required string Type { get; init; }
    public DateTimeOffset OccurredAt { get; init; }
    public required JsonDocument Data { get; init; }
}

public static class EventTypes
{
    public const string ReservationScheduled = "reservation.scheduled";
    public const string ReservationExtended = "reservation.extended";
    public const string ReservationCancelled = "reservation.cancelled";
    public const string LeaseProvisioning = "lease.provisioning";
    public const string NodeDrained = "node.drained";
    public const string NodeUndrained = "node.undrained";
    public const string PoolUpdated = "pool.updated";
    public const string NodeFailed = "node.failed";
    public const string NodeRegistered = "node.registered";
    public const string NodeRestored = "node.restored";
    public const string LeaseMigrated = "lease.migrated";
    public const string LeaseDegraded = "lease.degraded";
    public const string ReservationActivated = "reservation.activated";
    public const string ReservationEndingSoon = "reservation.ending_soon";
    public const string ReservationCompleted = "reservation.completed";
    public const string ReservationPending = "reservation.pending";
    public const string ReservationRejected = "reservation.rejected";
    public const string LeaseRecallNotice = "lease.recall_notice";
    public const string ReservationRecalled = "reservation.recalled";
    public const string MaintenanceScheduled = "node.maintenance_scheduled";
    public const string MaintenanceCancelled = "node.maintenance_cancelled";
    public const string TenantFairShareSet = "tenant.fair_share_set";
    public const string TenantCreated = "tenant.created";
    public const string TenantQuotaSet = "tenant.quota_set";
    public const string ApiKeyCreated = "api_key.created";
    public const string ApiKeyRevoked = "api_key.revoked";
    public const string CreditIssued = "credit.issued";
}

/// <summary>An idempotency key: the request's hash and the answer it got, committed with the effect.</summary>
public sealed class IdempotencyRecord
{
    public Guid TenantId { get; init; }
    public required string Key { get; init; }
    public required byte[] RequestHash { get; init; }
    public int ResponseStatus { get; init; }
    public required string ResponseBody { get; init; }
    public string? Location { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
}

/// <summary>
/// One entry of a pool's allocation change log. Every allocation transaction bumps the pool's version and appends
/// the new hold of the lease it touched (empty arrays: released), or a node's new allocatability, so deciders catch up
/// by reading only what changed.
/// </summary>
public sealed class PoolChange
{
    public required string PoolId { get; init; }
    public long Version { get; init; }
    /// <summary>The lease whose hold changed; null for a node change.</summary>
    public Guid? LeaseId { get; init; }
    /// <summary>The node that was opened or closed to new allocations (drain, undrain); null for a lease change.</summary>
    public int? NodeId { get; init; }
    public bool? NodeAllocatable { get; init; }
    public DateTimeOffset StartAt { get; init; }
    public DateTimeOffset EndAt { get; init; }
    public required int[] NodeIds { get; init; }
    public required short[] GpuMasks { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
}

/// <summary>A secret the service generates once and shares between replicas (the offering-token signing key).</summary>
public sealed class ServiceSecret
{
    public required string Name { get; init; }
    public required byte[] Value { get; init; }
}

public sealed class EventConfiguration :
    IEntityTypeConfiguration<Event>, IEntityTypeConfiguration<IdempotencyRecord>, IEntityTypeConfiguration<PoolChange>,
    IEntityTypeConfiguration<ServiceSecret>
{
    public void Configure(EntityTypeBuilder<ServiceSecret> b) => b.HasKey(s => s.Name);

    public void Configure(EntityTypeBuilder<Event> b)
    {
        b.Property(e => e.Id).UseIdentityAlwaysColumn();
        b.Property(e => e.Type).HasMaxLength(64);
        b.Property(e => e.Data).HasColumnType("jsonb");
        b.HasIndex(e => new { e.TenantId, e.Id });
        b.HasIndex(e => e.ReservationId);
    }

    public void Configure(EntityTypeBuilder<IdempotencyRecord> b)
    {
        b.ToTable("idempotency_keys");
        b.HasKey(k => new { k.TenantId, k.Key });
        b.Property(k => k.Key).HasMaxLength(255);
        b.HasOne<Tenant>().WithMany().HasForeignKey(k => k.TenantId);
        b.HasIndex(k => k.CreatedAt);
    }

    public void Configure(EntityTypeBuilder<PoolChange> b)
    {
        b.HasKey(c => new { c.PoolId, c.Version });
        b.HasOne<Pool>().WithMany().HasForeignKey(c => c.PoolId);
    }
}
