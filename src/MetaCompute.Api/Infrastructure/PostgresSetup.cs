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
            return configured;
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
        var connectionString = server.ConnectionString("metacompute");
        builder.Configuration[$"ConnectionStrings:{ConnectionStringName}"] = connectionString;
        return connectionString;
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
