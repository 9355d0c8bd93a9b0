using System.Diagnostics;
using MetaCompute.Api.Infrastructure;
using MetaCompute.Simulation.Inventory;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;
using Npgsql;

namespace MetaCompute.Api.Data;

public sealed class SimulationOptions
{
    public int TargetGpus { get; set; } = 4096;
    public int Seed { get; set; } = 42;
    public double FailedNodeShare { get; set; } = 0.01;
}

public sealed record BootstrapTenant(string Name, string ApiKey, TenantKind Kind = TenantKind.External);

public sealed class BootstrapOptions
{
    /// <summary>When set, an operator key equal to this value is ensured at start.</summary>
    public string? OperatorApiKey { get; set; }

    /// <summary>Tenants with known keys, for demos and local development.</summary>
    public List<BootstrapTenant> DemoTenants { get; set; } = [];
}

/// <summary>Applies migrations, seeds the simulated data centre into an empty database and ensures bootstrap keys.</summary>
public static class DatabaseInitializer
{
    // Several replicas may start together; one seeds, the others wait and then find the data there.
    private const long SeedLockKey = 0x4d43_5345_4544; // "MCSEED"
    private const long MigrateLockKey = 0x4d43_4d49_4752; // "MCMIGR"

    public static async Task InitializeAsync(IServiceProvider services, CancellationToken ct = default)
    {
        await using var scope = services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<MetaComputeDbContext>();
        var logger = scope.ServiceProvider.GetRequiredService<ILoggerFactory>().CreateLogger("MetaCompute.Database");
        var time = scope.ServiceProvider.GetRequiredService<TimeProvider>();
        var configuration = scope.ServiceProvider.GetRequiredService<IConfiguration>();

        var target = new NpgsqlConnectionStringBuilder(db.Database.GetConnectionString());
        if (scope.ServiceProvider.GetService<EmbeddedPostgres>() is { } embedded)
        {
            logger.LogInformation("PostgreSQL: the embedded server in {DataDirectory}, on port {Port}, database {Database}", embedded.DataDirectory,
                embedded.Port, target.Database);
        }
        else
        {
            logger.LogInformation("PostgreSQL: {Host}:{Port}, database {Database}", target.Host, target.Port, target.Database);
        }

        var phase = Stopwatch.StartNew();
        await EnsureDatabaseExistsAsync(db.Database.GetConnectionString()!, ct);
        // Replicas starting together on a new database would otherwise run the same migrations side by side (one of
        // them failing on a table the other just created): one migrates, the others wait and then find nothing to do.
        await db.Database.OpenConnectionAsync(ct);
        try
        {
            await db.Database.ExecuteSqlAsync($"SELECT pg_advisory_lock({MigrateLockKey})", ct);
            try
            {
                // On a new database EF reads the migrations' history table before creating it, and logs that failed read
                // as an error (dotnet/efcore#37328) although it is the expected first step. Creating the table first, as
                // EF itself would, keeps a first start's log free of errors that are not errors.
                await db.GetService<IHistoryRepository>().CreateIfNotExistsAsync(ct);
                var pending = (await db.Database.GetPendingMigrationsAsync(ct)).ToList();
                await db.Database.MigrateAsync(ct);
                if (pending.Count == 0)
                {
                    logger.LogInformation("Migrations: the schema is current ({ElapsedMs} ms)", phase.ElapsedMilliseconds);
                }
                else
                {
                    logger.LogInformation("Migrations: applied {Count} in {ElapsedMs} ms", pending.Count, phase.ElapsedMilliseconds);
                }
            }
            finally
            {
                await db.Database.ExecuteSqlAsync($"SELECT pg_advisory_unlock({MigrateLockKey})", CancellationToken.None);
            }
        }
        finally
        {
            await db.Database.CloseConnectionAsync();
        }

        var simulation = configuration.GetSection("Simulation").Get<SimulationOptions>() ?? new SimulationOptions();
        await using (var tx = await db.Database.BeginTransactionAsync(ct))
        {
            await db.Database.ExecuteSqlAsync($"SELECT pg_advisory_xact_lock({SeedLockKey})", ct);
            if (!await db.Regions.AnyAsync(ct))
            {
                logger.LogInformation("Seeding a simulated data centre of about {TargetGpus} GPUs (seed {Seed})", simulation.TargetGpus, simulation.Seed);
                var stopwatch = Stopwatch.StartNew();
                var inventory = InventoryGenerator.Generate(new InventoryOptions
                {
                    TargetGpus = simulation.TargetGpus, Seed = simulation.Seed, FailedNodeShare = simulation.FailedNodeShare,
                });
                await InventorySeeder.SeedAsync(db, inventory, time.GetUtcNow(), ct);
                await tx.CommitAsync(ct);
                logger.LogInformation("Seeded a simulated data centre: {Gpus} GPUs, {Nodes} nodes, {Pools} pools in {ElapsedMs} ms",
                    inventory.GpuCount, inventory.Nodes.Count, inventory.Pools.Count, stopwatch.ElapsedMilliseconds);
            }
            else
            {
                var (gpus, nodes) = (await db.Gpus.CountAsync(ct), await db.Nodes.CountAsync(ct));
                await tx.CommitAsync(ct);
                logger.LogInformation("Found a seeded data centre: {Gpus} GPUs, {Nodes} nodes", gpus, nodes);
            }
        }

        var bootstrap = configuration.GetSection("Bootstrap").Get<BootstrapOptions>() ?? new BootstrapOptions();
        await EnsureBootstrapKeysAsync(db, bootstrap, time.GetUtcNow(), ct);
    }

    private static async Task EnsureBootstrapKeysAsync(MetaComputeDbContext db, BootstrapOptions bootstrap, DateTimeOffset now, CancellationToken ct)
    {
        if (!string.IsNullOrEmpty(bootstrap.OperatorApiKey))
        {
            await EnsureKeyAsync(db, bootstrap.OperatorApiKey, null, ApiKeyRole.Operator, "bootstrap operator", now, ct);
        }

        foreach (var demo in bootstrap.DemoTenants)
        {
            var tenant = await db.Tenants.FirstOrDefaultAsync(t => t.Name == demo.Name, ct);
            if (tenant is null)
            {
                tenant = new Tenant { Id = Guid.CreateVersion7(now), Name = demo.Name, Kind = demo.Kind, CreatedAt = now };
                db.Tenants.Add(tenant);
                await db.SaveChangesAsync(ct);
            }

            await EnsureKeyAsync(db, demo.ApiKey, tenant.Id, ApiKeyRole.Tenant, "demo", now, ct);
        }
    }

    private static async Task EnsureKeyAsync(MetaComputeDbContext db, string key, Guid? tenantId, ApiKeyRole role, string name,
        DateTimeOffset now, CancellationToken ct)
    {
        var hash = ApiKeys.Hash(key);
        // ON CONFLICT makes concurrent starts of several replicas harmless.
        await db.Database.ExecuteSqlAsync($"""
            INSERT INTO api_keys (id, tenant_id, role, name, prefix, key_hash, created_at)
            VALUES ({Guid.CreateVersion7(now)}, {tenantId}, {role.ToString()}, {name}, {ApiKeys.Prefix(key)}, {hash}, {now})
            ON CONFLICT (key_hash) DO NOTHING
            """, ct);
    }

    /// <summary>The embedded server starts with only the <c>postgres</c> database; create ours on first run.</summary>
    private static async Task EnsureDatabaseExistsAsync(string connectionString, CancellationToken ct)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        var database = builder.Database;
        if (string.IsNullOrEmpty(database) || database == "postgres")
        {
            return;
        }

        builder.Database = "postgres";
        builder.Pooling = false;
        await using var connection = new NpgsqlConnection(builder.ConnectionString);
        try
        {
            await connection.OpenAsync(ct);
        }
        catch (PostgresException)
        {
            // No access to the maintenance database: the database is someone else's to create.
            return;
        }

        await using var exists = new NpgsqlCommand("SELECT 1 FROM pg_database WHERE datname = $1", connection) { Parameters = { new() { Value = database } } };
        if (await exists.ExecuteScalarAsync(ct) is null)
        {
            await using var create = new NpgsqlCommand($"CREATE DATABASE \"{database.Replace("\"", "\"\"")}\"", connection);
            try
            {
                await create.ExecuteNonQueryAsync(ct);
            }
            catch (PostgresException e) when (e.SqlState is PostgresErrorCodes.DuplicateDatabase or PostgresErrorCodes.UniqueViolation)
            {
                // Another replica created it first (or at the same moment: then the catalog's unique index refuses ours).
            }
        }
    }
}
