using Microsoft.EntityFrameworkCore;

namespace MetaCompute.Api.Data;

public sealed class MetaComputeDbContext(DbContextOptions<MetaComputeDbContext> options) : DbContext(options)
{
    public DbSet<GpuModel> GpuModels => Set<GpuModel>();
    public DbSet<Region> Regions => Set<Region>();
    public DbSet<Site> Sites => Set<Site>();
    public DbSet<FabricIsland> FabricIslands => Set<FabricIsland>();
    public DbSet<Rack> Racks => Set<Rack>();
    public DbSet<Node> Nodes => Set<Node>();
    public DbSet<Gpu> Gpus => Set<Gpu>();
    public DbSet<Pool> Pools => Set<Pool>();
    public DbSet<Tenant> Tenants => Set<Tenant>();
    public DbSet<ApiKey> ApiKeys => Set<ApiKey>();

    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        modelBuilder.HasPostgresExtension("btree_gist");
        modelBuilder.ApplyConfigurationsFromAssembly(typeof(MetaComputeDbContext).Assembly);
    }
}
