using MetaCompute.Api.Infrastructure;
using Npgsql;
using Testcontainers.PostgreSql;

namespace MetaCompute.Api.Tests.Infrastructure;

/// <summary>
/// One PostgreSQL server for the whole test run: the one in <c>ConnectionStrings__Postgres</c> when set, otherwise a
/// throwaway embedded server (as <c>dotnet run</c> uses), otherwise a Testcontainers container where Docker answers.
/// A template database is migrated and seeded once; each test class copies it into a database of its own.
/// </summary>
public static class TestDatabaseServer
{
    public const string TemplateDatabase = "metacompute_test_template";

    private static readonly Lazy<Task<string>> Server = new(StartAsync);
    private static readonly SemaphoreSlim TemplateLock = new(1, 1);
    private static bool _templateReady;

    /// <summary>A connection string to the server's maintenance database.</summary>
    public static Task<string> AdminConnectionStringAsync() => Server.Value;

    /// <summary>Creates a fresh database for one test class, copied from the seeded template.</summary>
    public static async Task<string> CreateDatabaseAsync(Func<string, Task> buildTemplate)
    {
        var admin = await Server.Value;
        await TemplateLock.WaitAsync();
        try
        {
            if (!_templateReady)
            {
                await ExecuteAsync(admin, $"DROP DATABASE IF EXISTS {TemplateDatabase} WITH (FORCE)");
                await buildTemplate(WithDatabase(admin, TemplateDatabase));
                // CREATE DATABASE … TEMPLATE refuses while anyone is connected to the template.
                NpgsqlConnection.ClearAllPools();
                _templateReady = true;
            }

            var name = "metacompute_test_" + Guid.NewGuid().ToString("N")[..12];
            await ExecuteAsync(admin, $"CREATE DATABASE {name} TEMPLATE {TemplateDatabase}");
            return WithDatabase(admin, name);
        }
        finally
        {
            TemplateLock.Release();
        }
    }

    public static string WithDatabase(string connectionString, string database) =>
        new NpgsqlConnectionStringBuilder(connectionString) { Database = database, MaxPoolSize = 40 }.ConnectionString;

    private static async Task ExecuteAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false }.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    private const string FolderPrefix = "metacompute-tests-";

    /// <summary>
    /// The server stops when the test process exits, but the runner may end the process before a folder could be
    /// deleted; earlier runs' folders without a running server are removed here instead.
    /// </summary>
    private static void RemoveStoppedServerFolders()
    {
        foreach (var folder in Directory.GetDirectories(Path.GetTempPath(), FolderPrefix + "*"))
        {
            if (!File.Exists(Path.Combine(folder, "postmaster.pid")))
            {
                try
                {
                    Directory.Delete(folder, recursive: true);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    // Someone else's folder or one in use: leave it.
                }
            }
        }
    }

    private static async Task<string> StartAsync()
    {
        var configured = Environment.GetEnvironmentVariable("ConnectionStrings__Postgres");
        if (!string.IsNullOrWhiteSpace(configured))
        {
            return WithDatabase(configured, "postgres");
        }

        if (EmbeddedPostgres.FindBinaries() is not null)
        {
            RemoveStoppedServerFolders();
            var directory = Path.Combine(Path.GetTempPath(), FolderPrefix + Guid.NewGuid().ToString("N")[..8]);
            // Durability buys nothing in a throwaway server; turning it off makes each test's commits cheap.
            var server = await EmbeddedPostgres.StartAsync(directory,
                ["fsync=off", "synchronous_commit=off", "full_page_writes=off", "max_connections=400"]);
            return server.ConnectionString();
        }

        try
        {
            var container = new PostgreSqlBuilder("postgres:15").Build();
            await container.StartAsync();
            AppDomain.CurrentDomain.ProcessExit += (_, _) => container.DisposeAsync().AsTask().GetAwaiter().GetResult();
            return WithDatabase(container.GetConnectionString(), "postgres");
        }
        catch (Exception e) when (e.GetType().Name == "DockerUnavailableException")
        {
            throw new InvalidOperationException(EmbeddedPostgres.InstallHint + " (or start a Docker engine for Testcontainers).");
        }
    }
}
