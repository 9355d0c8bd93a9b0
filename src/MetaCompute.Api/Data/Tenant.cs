using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace MetaCompute.Api.Data;

public enum TenantKind
{
    External,
    /// <summary>The company's own first-party demand.</summary>
    Internal,
}

public sealed class Tenant
{
    public Guid Id { get; init; }
    public required string Name { get; set; }
    public TenantKind Kind { get; init; }
    /// <summary>The tenant's weight in fair share between queued requests: usage is divided by it, so 2 counts half.</summary>
    public int FairShareWeight { get; set; } = 1;
    public DateTimeOffset CreatedAt { get; init; }
}

public enum ApiKeyRole
{
    Tenant,
    Operator,
}

/// <summary>An API key; only its SHA-256 hash is stored, the key itself is shown once.</summary>
public sealed class ApiKey
{
    public Guid Id { get; init; }
    public Guid? TenantId { get; init; }
    public ApiKeyRole Role { get; init; }
    public required string Name { get; init; }
    public required string Prefix { get; init; }
    public required byte[] KeyHash { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset? RevokedAt { get; set; }
}

public sealed class TenantConfiguration : IEntityTypeConfiguration<Tenant>, IEntityTypeConfiguration<ApiKey>
{
    public void Configure(EntityTypeBuilder<Tenant> b)
    {
        b.Property(t => t.Id).ValueGeneratedNever();
        b.Property(t => t.Kind).HasConversion<string>().HasMaxLength(16);
        b.Property(t => t.Name).HasMaxLength(100);
        b.HasIndex(t => t.Name).IsUnique();
        b.Property(t => t.FairShareWeight).HasDefaultValue(1);
        b.ToTable(t => t.HasCheckConstraint("ck_tenants_fair_share_weight", "fair_share_weight BETWEEN 1 AND 1000"));
    }

    public void Configure(EntityTypeBuilder<ApiKey> b)
    {
        b.Property(k => k.Id).ValueGeneratedNever();
        b.Property(k => k.Role).HasConversion<string>().HasMaxLength(16);
        b.Property(k => k.Name).HasMaxLength(100);
        b.HasOne<Tenant>().WithMany().HasForeignKey(k => k.TenantId);
        b.HasIndex(k => k.KeyHash).IsUnique();
        b.HasIndex(k => new { k.TenantId, k.Id });
        // A tenant key belongs to a tenant; an operator key to none.
        b.ToTable(t => t.HasCheckConstraint("ck_api_keys_role_matches_tenant",
            "(role = 'Operator' AND tenant_id IS NULL) OR (role = 'Tenant' AND tenant_id IS NOT NULL)"));
    }
}
