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
    public DbSet<TenantQuota> TenantQuotas => Set<TenantQuota>();
    public DbSet<Reservation> Reservations => Set<Reservation>();
    public DbSet<Lease> Leases => Set<Lease>();
    public DbSet<Allocation> Allocations => Set<Allocation>();
    public DbSet<Event> Events => Set<Event>();
    public DbSet<IdempotencyRecord> IdempotencyKeys => Set<IdempotencyRecord>();
    public DbSet<PoolChange> PoolChanges => Set<PoolChange>();
    public DbSet<ServiceSecret> ServiceSecrets => Set<ServiceSecret>();
    public DbSet<MaintenanceWindow> MaintenanceWindows => Set<MaintenanceWindow>();
    public DbSet<LeaseLoss> LeaseLosses => Set<LeaseLoss>();
    public DbSet<Charge> Charges => Set<Charge>();
    public DbSet<UsageRecord> UsageRecords => Set<UsageRecord>();
    public DbSet<MeteringState> MeteringStates => Set<MeteringState>();
    public DbSet<Invoice> Invoices => Set<Invoice>();
    public DbSet<InvoiceLine> InvoiceLines => Set<InvoiceLine>();

    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        modelBuilder.HasPostgresExtension("btree_gist");
        modelBuilder.ApplyConfigurationsFromAssembly(typeof(MetaComputeDbContext).Assembly);
    }
}
