namespace MetaCompute.Api.Infrastructure;

public static class PostgresSetup
{
    public const string ConnectionStringName = "Postgres";

    /// <summary>
    /// Uses <c>ConnectionStrings:Postgres</c> when set. Otherwise, in Development, starts the embedded server in
    /// <c>.data/postgres</c> under the repository (git-ignored), reusing it across runs and stopping it with the app.
    /// </summary>
    public static async Task<string> ResolveConnectionStringAsync(WebApplicationBuilder builder)
    {
        var configured = builder.Configuration.GetConnectionString(ConnectionStringName);
        if (!string.IsNullOrWhiteSpace(configured))
        {
            return WithServiceDefaults(configured);
        }

        if (!builder.Environment.IsDevelopment())
        {
            throw new InvalidOperationException(
                $"ConnectionStrings:{ConnectionStringName} is not set. Outside Development the service needs a PostgreSQL server to use.");
        }

        var dataDirectory = Path.Combine(RepositoryRoot(builder.Environment.ContentRootPath), ".data", "postgres");
        var server = await EmbeddedPostgres.StartAsync(dataDirectory);
        builder.Services.AddSingleton(server);
        builder.Services.AddHostedService<EmbeddedPostgresLifetime>();
        var connectionString = WithServiceDefaults(server.ConnectionString("metacompute"));
        builder.Configuration[$"ConnectionStrings:{ConnectionStringName}"] = connectionString;
        return connectionString;
    }

    /// <summary>
    /// Unless the connection string says otherwise: no automatic preparation, and a connection returned to the pool is
    /// not reset. Npgsql's automatic preparation can leave a pooled connection out of step with its server after a
    /// statement fails inside a transaction while auto-prepared statements are being replaced (npgsql/npgsql#6391): valid
    /// statements on that connection then fail at random. The pool's hot batches prepare their statements explicitly
    /// instead (<see cref="Scheduling.PoolOccupancyCache"/>, <see cref="Scheduling.PoolDecider"/>), which that fault does
    /// not touch, and not resetting connections keeps those preparations. The service keeps no other session state on
    /// pooled connections (its only session-level lock, the scheduler's, has a connection of its own).
    /// </summary>
    public static string WithServiceDefaults(string connectionString)
    {
        // The typed builder knows every keyword, so ask the string as written what it sets.
        var given = new System.Data.Common.DbConnectionStringBuilder { ConnectionString = connectionString };
        bool Sets(params string[] keywords) => keywords.Any(given.ContainsKey);
        var builder = new Npgsql.NpgsqlConnectionStringBuilder(connectionString);
        if (!Sets("Max Auto Prepare", "MaxAutoPrepare"))
        {
            builder.MaxAutoPrepare = 0;
        }

        if (!Sets("No Reset On Close", "NoResetOnClose"))
        {
            builder.NoResetOnClose = true;
        }

        return builder.ConnectionString;
    }

    /// <summary>The folder holding MetaCompute.sln, or the content root when run from elsewhere (a published build).</summary>
    private static string RepositoryRoot(string contentRoot)
    {
        for (var dir = new DirectoryInfo(contentRoot); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "MetaCompute.sln")))
            {
                return dir.FullName;
            }
        }

        return contentRoot;
    }
}

/// <summary>Stops the embedded server when the host stops (Ctrl-C included).</summary>
internal sealed class EmbeddedPostgresLifetime(EmbeddedPostgres server) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => server.StopAsync();
}
