using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace MetaCompute.Api.Data;

public sealed class GpuModel
{
    public required string Id { get; init; }
    public required string DisplayName { get; set; }
    public required string Vendor { get; set; }
    public int MemoryGb { get; set; }
    public decimal ListPricePerGpuHour { get; set; }
}

public sealed class Region
{
    public required string Id { get; init; }
    public required string DisplayName { get; set; }
    public List<Site> Sites { get; init; } = [];
}

public sealed class Site
{
    public int Id { get; init; }
    public required string RegionId { get; init; }
    public required string Name { get; set; }
}

public sealed class FabricIsland
{
    public int Id { get; init; }
    public int SiteId { get; init; }
    public required string PoolId { get; init; }
    public required string Name { get; set; }
}

public sealed class Rack
{
    public int Id { get; init; }
    public int IslandId { get; init; }
    public required string Name { get; set; }
}

public sealed class TopologyConfiguration :
    IEntityTypeConfiguration<GpuModel>, IEntityTypeConfiguration<Region>, IEntityTypeConfiguration<Site>,
    IEntityTypeConfiguration<FabricIsland>, IEntityTypeConfiguration<Rack>
{
    public void Configure(EntityTypeBuilder<GpuModel> b)
    {
        b.Property(m => m.ListPricePerGpuHour).HasPrecision(12, 6);
    }

    public void Configure(EntityTypeBuilder<Region> b)
    {
        b.HasMany(r => r.Sites).WithOne().HasForeignKey(s => s.RegionId);
    }

    public void Configure(EntityTypeBuilder<Site> b)
    {
        b.Property(s => s.Id).ValueGeneratedNever();
        b.HasIndex(s => new { s.RegionId, s.Name }).IsUnique();
    }

    public void Configure(EntityTypeBuilder<FabricIsland> b)
    {
        b.ToTable("fabric_islands");
        b.Property(i => i.Id).ValueGeneratedNever();
        b.HasOne<Site>().WithMany().HasForeignKey(i => i.SiteId);
        b.HasOne<Pool>().WithMany().HasForeignKey(i => i.PoolId);
        b.HasIndex(i => i.Name).IsUnique();
    }

    public void Configure(EntityTypeBuilder<Rack> b)
    {
        b.Property(r => r.Id).ValueGeneratedNever();
        b.HasOne<FabricIsland>().WithMany().HasForeignKey(r => r.IslandId);
        b.HasIndex(r => r.Name).IsUnique();
    }
}
