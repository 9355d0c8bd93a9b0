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
    public async Task Two_replicas_starting_together_on_an_empty_database_both_come_up_and_log_no_error()
    {
        var admin = await TestDatabaseServer.AdminConnectionStringAsync();
        var connectionString = TestDatabaseServer.WithDatabase(admin, "metacompute_first_start_" + Guid.NewGuid().ToString("N")[..12]);
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Simulation:TargetGpus"] = ApiFactory.InventoryOptions.TargetGpus.ToString(),
        }).Build();
        var errors = new ConcurrentQueue<string>();
        var services = new ServiceCollection()
            .AddLogging(logging => logging.AddProvider(new ErrorCollector(errors)))
            .AddSingleton<IConfiguration>(configuration)
            .AddMetaComputeApi(configuration, connectionString);
        await using var provider = services.BuildServiceProvider();

        // Two replicas starting together: both come up, one of them migrates and seeds. (The database stays with the
        // throwaway test server, as every test class's does.)
        await Task.WhenAll(DatabaseInitializer.InitializeAsync(provider), DatabaseInitializer.InitializeAsync(provider));

        Assert.Empty(errors);
        await using var scope = provider.CreateAsyncScope();
        Assert.True(await scope.ServiceProvider.GetRequiredService<MetaComputeDbContext>().Nodes.AnyAsync());
    }

    /// <summary>Collects every entry logged at Error or above.</summary>
    private sealed class ErrorCollector(ConcurrentQueue<string> errors) : ILoggerProvider, ILogger
    {
        public ILogger CreateLogger(string categoryName) => this;

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Error;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel))
            {
                errors.Enqueue(formatter(state, exception));
            }
        }

        public void Dispose()
        {
        }
    }
}
