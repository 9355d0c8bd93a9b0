using System.Net.Http.Headers;
using System.Net.Http.Json;
using MetaCompute.Api.Admin;
using MetaCompute.Api.Data;
using MetaCompute.Simulation.Inventory;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace MetaCompute.Api.Tests.Infrastructure;

/// <summary>
/// The real app over HTTP against real PostgreSQL. Each test class gets its own database copied from a template
/// seeded with <see cref="Inventory"/>, so classes run in parallel without seeing each other's data.
/// </summary>
public class ApiFactory : WebApplicationFactory<Program>, IAsyncLifetime
{
    public const string OperatorKey = "mc_test_operator_key";

    /// <summary>The fleet every test database starts with (small, so the template seeds in well under a second).</summary>
    public static readonly InventoryOptions InventoryOptions = new() { TargetGpus = 1024, Seed = 7, FailedNodeShare = 0.05 };

    public static readonly Inventory Inventory = InventoryGenerator.Generate(InventoryOptions);

    public string ConnectionString { get; private set; } = "";

    /// <summary>Settings a derived factory overrides (rate limits, say).</summary>
    protected virtual IReadOnlyDictionary<string, string?> ExtraSettings => new Dictionary<string, string?>();

    public async Task InitializeAsync()
    {
        ConnectionString = await TestDatabaseServer.CreateDatabaseAsync(BuildTemplateAsync);
    }

    public new async Task DisposeAsync() => await base.DisposeAsync();

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Testing");
        foreach (var (key, value) in Settings(ConnectionString).Concat(ExtraSettings))
        {
            builder.UseSetting(key, value);
        }
    }

    private static IEnumerable<KeyValuePair<string, string?>> Settings(string connectionString) => new Dictionary<string, string?>
    {
        ["ConnectionStrings:Postgres"] = connectionString,
        ["Bootstrap:OperatorApiKey"] = OperatorKey,
        ["Simulation:TargetGpus"] = InventoryOptions.TargetGpus.ToString(),
        ["Simulation:Seed"] = InventoryOptions.Seed.ToString(),
        ["Simulation:FailedNodeShare"] = InventoryOptions.FailedNodeShare.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["Serilog:MinimumLevel:Default"] = "Warning",
        ["RateLimiting:PermitsPerSecond"] = "100000",
        ["RateLimiting:Burst"] = "100000",
        // Tests that send bad keys on purpose are not throttled for it; AuthThrottleTests sets its own limits.
        ["Auth:FailedAuthenticationBurst"] = "100000",
        // Tests drive the scheduler's tick themselves, at the times they choose.
        ["Scheduler:Enabled"] = "false",
    };

    /// <summary>Builds the template by starting the real app once against it: real migrations, real seeding.</summary>
    private static async Task BuildTemplateAsync(string connectionString)
    {
        await using var factory = new Replica(connectionString);
        using var client = factory.CreateClient();
        (await client.GetAsync("/health/ready")).EnsureSuccessStatusCode();
    }

    /// <summary>Another instance of the service on the same database, as a second API replica would be.</summary>
    public sealed class Replica(string connectionString) : WebApplicationFactory<Program>
    {
        protected override void ConfigureWebHost(IWebHostBuilder builder)
        {
            builder.UseEnvironment("Testing");
            foreach (var (key, value) in Settings(connectionString))
            {
                builder.UseSetting(key, value);
            }
        }
    }

    public HttpClient ClientWithKey(string? apiKey)
    {
        var client = CreateClient();
        if (apiKey is not null)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
        }

        return client;
    }

    public HttpClient OperatorClient() => ClientWithKey(OperatorKey);

    public async Task<T> ScalarAsync<T>(string sql, params object[] parameters)
    {
        await using var connection = await OpenConnectionAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        foreach (var parameter in parameters)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = parameter });
        }

        return (T)(await command.ExecuteScalarAsync())!;
    }

    /// <summary>Creates a tenant and a key for it through the operator API, as an operator would.</summary>
    public async Task<TestTenant> CreateTenantAsync(string? name = null, TenantKind kind = TenantKind.External)
    {
        using var client = OperatorClient();
        return await CreateTenantAsync(client, name, kind);
    }

    /// <summary>Creates a tenant and a key for it with <paramref name="client"/>, an operator's client of any instance.</summary>
    public static async Task<TestTenant> CreateTenantAsync(HttpClient client, string? name = null, TenantKind kind = TenantKind.External)
    {
        name ??= "tenant-" + Guid.NewGuid().ToString("N")[..10];
        var created = await client.PostAsJsonAsync("/v1/admin/tenants", new { name, kind = kind == TenantKind.Internal ? "internal" : "external" });
        created.EnsureSuccessStatusCode();
        var tenant = (await created.Content.ReadFromJsonAsync<TenantResponse>(Json.Options))!;
        var keyAnswer = await client.PostAsJsonAsync($"/v1/admin/tenants/{tenant.Id}/api-keys", new { name = "test" });
        keyAnswer.EnsureSuccessStatusCode();
        var key = (await keyAnswer.Content.ReadFromJsonAsync<NewApiKeyResponse>(Json.Options))!;
        return new TestTenant(tenant.Id, name, key.Id, key.Key);
    }

    /// <summary>A new tenant whose quota never binds in <paramref name="pools"/>, so capacity alone decides; its client.</summary>
    public async Task<HttpClient> ClientWithoutQuotaLimitAsync(TenantKind kind, params string[] pools)
    {
        var tenant = await CreateTenantAsync(kind: kind);
        using var operatorClient = OperatorClient();
        foreach (var pool in pools)
        {
            (await operatorClient.PutAsJsonAsync($"/v1/admin/tenants/{tenant.Id}/quotas/{pool}", new { maxConcurrentGpus = 100_000 }))
                .EnsureSuccessStatusCode();
        }

        return ClientWithKey(tenant.ApiKey);
    }

    /// <summary>The scheduler's admission step at <paramref name="now"/>, as its tick runs it.</summary>
    public async Task<Scheduling.RequestQueue.Result> AdmitAsync(DateTimeOffset now)
    {
        await using var scope = Services.CreateAsyncScope();
        return await Scheduling.RequestQueue.RunAsync(scope.ServiceProvider.GetRequiredService<MetaComputeDbContext>(),
            Services.GetRequiredService<Scheduling.PoolOccupancyCache>(), new Scheduling.SchedulerOptions(), new Reservations.QuotaOptions(), now,
            CancellationToken.None);
    }

    public async Task<T> WithDbAsync<T>(Func<MetaComputeDbContext, Task<T>> query)
    {
        await using var scope = Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<MetaComputeDbContext>();
        return await query(db);
    }

    public async Task<NpgsqlConnection> OpenConnectionAsync()
    {
        var connection = new NpgsqlConnection(ConnectionString);
        await connection.OpenAsync();
        return connection;
    }
}

public sealed record TestTenant(string Id, string Name, string KeyId, string ApiKey);
