using System.Collections.Concurrent;
using MetaCompute.Api.Data;
using MetaCompute.Api.Infrastructure;
using MetaCompute.Api.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace MetaCompute.Api.Tests;

/// <summary>The first start on an empty database (migrations and seeding, with the app's own services) and what it logs.</summary>
public sealed class FirstStartTests
{
    [Fact]
    public async Task Two_replicas_starting_together_on_an_empty_database_both_come_up_log_each_phase_and_no_error()
    {
        var admin = await TestDatabaseServer.AdminConnectionStringAsync();
        var connectionString = TestDatabaseServer.WithDatabase(admin, "metacompute_first_start_" + Guid.NewGuid().ToString("N")[..12]);
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Simulation:TargetGpus"] = ApiFactory.InventoryOptions.TargetGpus.ToString(),
        }).Build();
        var log = new LogCollector();
        var services = new ServiceCollection()
            .AddLogging(logging => logging.AddProvider(log))
            .AddSingleton<IConfiguration>(configuration)
            .AddMetaComputeApi(configuration, connectionString);
        await using var provider = services.BuildServiceProvider();

        // Two replicas starting together: both come up, one of them migrates and seeds. (The database stays with the
        // throwaway test server, as every test class's does.)
        await Task.WhenAll(DatabaseInitializer.InitializeAsync(provider), DatabaseInitializer.InitializeAsync(provider));

        Assert.DoesNotContain(log.Entries, e => e.Level >= LogLevel.Error);
        // Each phase of a start says what it did and how long it took, so a first start never looks stuck.
        var lines = log.Entries.Select(e => e.Message).ToList();
        Assert.Contains(lines, l => l.StartsWith("PostgreSQL: ", StringComparison.Ordinal) && l.Contains(connectionString.Split("Database=")[1].Split(';')[0]));
        Assert.Contains(lines, l => l.StartsWith("Migrations: applied ", StringComparison.Ordinal) && l.EndsWith(" ms", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("Migrations: the schema is current", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("Seeding a simulated data centre of about 1024 GPUs", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("Seeded a simulated data centre: ", StringComparison.Ordinal) && l.Contains(" GPUs, ") && l.EndsWith(" ms"));
        Assert.Contains(lines, l => l.StartsWith("Found a seeded data centre: ", StringComparison.Ordinal));
        await using var scope = provider.CreateAsyncScope();
        Assert.True(await scope.ServiceProvider.GetRequiredService<MetaComputeDbContext>().Nodes.AnyAsync());
    }

    /// <summary>Collects every entry logged at Information or above.</summary>
    internal sealed class LogCollector : ILoggerProvider, ILogger
    {
        public ConcurrentQueue<(LogLevel Level, string Message)> Entries { get; } = new();

        public ILogger CreateLogger(string categoryName) => this;

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel))
            {
                Entries.Enqueue((logLevel, formatter(state, exception)));
            }
        }

        public void Dispose()
        {
        }
    }
}
