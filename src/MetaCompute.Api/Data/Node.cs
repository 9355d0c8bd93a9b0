using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace MetaCompute.Api.Data;

public enum NodeState
{
    /// <summary>Healthy and open for new allocations.</summary>
    Healthy,
    /// <summary>Healthy, but closed to new allocations; existing leases run to their end.</summary>
    Draining,
    /// <summary>Out of service; its GPUs do not count as healthy capacity.</summary>
    Failed,
}

public sealed class Node
{
    public int Id { get; init; }
    public int RackId { get; init; }
    /// <summary>Denormalised from the rack so placement reads one table.</summary>
    public int IslandId { get; init; }
    public required string PoolId { get; init; }
    public required string Hostname { get; init; }
    public NodeState State { get; set; }
    /// <summary>When a node the fault model took out is repaired; null for nodes an operator failed (they restore them).</summary>
    public DateTimeOffset? RepairDueAt { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }
    public uint Version { get; set; }
}

/// <summary>One physical GPU. Its id is derived from its node (node id × 8 + index).</summary>
public sealed class Gpu
{
    public long Id { get; init; }
    public int NodeId { get; init; }
    public short Index { get; init; }
}

public sealed class NodeConfiguration : IEntityTypeConfiguration<Node>, IEntityTypeConfiguration<Gpu>
{
    public void Configure(EntityTypeBuilder<Node> b)
    {
        b.Property(n => n.Id).ValueGeneratedNever();
        b.Property(n => n.State).HasConversion<string>().HasMaxLength(16);
        b.Property(n => n.Version).IsRowVersion();
        b.HasOne<Rack>().WithMany().HasForeignKey(n => n.RackId);
        b.HasOne<FabricIsland>().WithMany().HasForeignKey(n => n.IslandId);
        b.HasOne<Pool>().WithMany().HasForeignKey(n => n.PoolId);
        b.HasIndex(n => n.Hostname).IsUnique();
        b.HasIndex(n => new { n.PoolId, n.Id });
        b.HasIndex(n => n.RepairDueAt).HasFilter("repair_due_at IS NOT NULL");
    }

    public void Configure(EntityTypeBuilder<Gpu> b)
    {
        b.Property(g => g.Id).ValueGeneratedNever();
        b.HasOne<Node>().WithMany().HasForeignKey(g => g.NodeId);
        b.HasIndex(g => new { g.NodeId, g.Index }).IsUnique();
        b.ToTable(t => t.HasCheckConstraint("ck_gpus_index_within_node", "index BETWEEN 0 AND 7"));
    }
}
