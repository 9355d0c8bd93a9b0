using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace MetaCompute.Api.Infrastructure;

/// <summary>
/// A private PostgreSQL server run from the machine's server binaries (initdb, pg_ctl) in a folder of its own,
/// listening on a free loopback port only. Used by <c>dotnet run</c> when no connection string is configured and by
/// the integration tests. PostgreSQL refuses to run as root, so as root the binaries run as the <c>postgres</c> user.
/// </summary>
public sealed class EmbeddedPostgres : IAsyncDisposable
{
    private readonly string _binDirectory;
    private readonly string _dataDirectory;
    private int _stopped;

    private EmbeddedPostgres(string binDirectory, string dataDirectory, int port)
    {
        _binDirectory = binDirectory;
        _dataDirectory = dataDirectory;
        Port = port;
    }

    public int Port { get; }

    public string DataDirectory => _dataDirectory;

    public string ConnectionString(string database = "postgres") =>
        $"Host=127.0.0.1;Port={Port};Username=postgres;Database={database}";

    public const string InstallHint =
        "PostgreSQL server binaries (initdb, pg_ctl) were not found: install them (Debian/Ubuntu: apt-get install postgresql) " +
        "or set ConnectionStrings:Postgres to a server you run.";

    /// <summary>
    /// Starts (or adopts) the server in <paramref name="dataDirectory"/>. A folder that already holds a cluster is reused;
    /// a server left running by a killed process is adopted rather than started twice.
    /// </summary>
    public static async Task<EmbeddedPostgres> StartAsync(string dataDirectory, IReadOnlyList<string>? settings = null,
        CancellationToken cancellationToken = default)
    {
        var bin = FindBinaries() ?? throw new PostgresBinariesNotFoundException(InstallHint);
        dataDirectory = Path.GetFullPath(dataDirectory);
        Directory.CreateDirectory(dataDirectory);
        await GiveToServerUserAsync(dataDirectory, cancellationToken);

        if (!File.Exists(Path.Combine(dataDirectory, "PG_VERSION")))
        {
            await RunAsync(bin, "initdb", ["-D", dataDirectory, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8"],
                cancellationToken);
        }

        var runningPort = await RunningPortAsync(bin, dataDirectory, cancellationToken);
        if (runningPort is int port)
        {
            return Register(new EmbeddedPostgres(bin, dataDirectory, port));
        }

        port = FreeLoopbackPort();
        // Loopback TCP only; no Unix socket, so nothing depends on a socket folder's permissions or path length.
        var options = string.Join(' ', new[] { $"-p {port}", "-c listen_addresses=127.0.0.1", "-c unix_socket_directories=''" }
            .Concat((settings ?? []).Select(s => $"-c {s}")));
        await RunAsync(bin, "pg_ctl", ["-D", dataDirectory, "-l", Path.Combine(dataDirectory, "server.log"), "-w", "-t", "60",
            "-o", options, "start"], cancellationToken);
        return Register(new EmbeddedPostgres(bin, dataDirectory, port));
    }

    public Task StopAsync() => StopAsync("fast");

    /// <summary>Restarts the server on the same port and settings (fast mode: sessions are ended, as an operator's restart would).</summary>
    public Task RestartAsync() =>
        RunAsync(_binDirectory, "pg_ctl", ["-D", _dataDirectory, "-l", Path.Combine(_dataDirectory, "server.log"), "-m", "fast", "-w", "-t", "60", "restart"],
            CancellationToken.None);

    /// <summary>
    /// Stops the server as a crash would (immediate mode): no shutdown checkpoint and no flush of the WAL still in its
    /// buffers, so the next start recovers from what reached the disk. For durability tests.
    /// </summary>
    public Task CrashAsync() => StopAsync("immediate");

    private async Task StopAsync(string mode)
    {
        if (Interlocked.Exchange(ref _stopped, 1) == 1)
        {
            return;
        }

        await RunAsync(_binDirectory, "pg_ctl", ["-D", _dataDirectory, "-m", mode, "-w", "stop"], CancellationToken.None);
    }

    public async ValueTask DisposeAsync() => await StopAsync();

    /// <summary>PATH first (Debian links them into /usr/local/bin on some machines), then Debian's versioned folders.</summary>
    public static string? FindBinaries()
    {
        var candidates = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Concat(Directory.Exists("/usr/lib/postgresql")
                ? Directory.GetDirectories("/usr/lib/postgresql").OrderByDescending(d => d, StringComparer.Ordinal).Select(d => Path.Combine(d, "bin"))
                : []);
        return candidates.FirstOrDefault(d => File.Exists(Path.Combine(d, "initdb")) && File.Exists(Path.Combine(d, "pg_ctl")));
    }

    private static EmbeddedPostgres Register(EmbeddedPostgres server)
    {
        // Backstop for exits that skip the host's shutdown (an unhandled exception, a test runner ending).
        AppDomain.CurrentDomain.ProcessExit += (_, _) => server.StopAsync().GetAwaiter().GetResult();
        return server;
    }

    private static async Task<int?> RunningPortAsync(string bin, string dataDirectory, CancellationToken ct)
    {
        var pidFile = Path.Combine(dataDirectory, "postmaster.pid");
        if (!File.Exists(pidFile))
        {
            return null;
        }

        var status = await RunAsync(bin, "pg_ctl", ["-D", dataDirectory, "status"], ct, throwOnError: false);
        if (status != 0)
        {
            return null;
        }

        // postmaster.pid line 4 is the port the running server listens on.
        var lines = await File.ReadAllLinesAsync(pidFile, ct);
        return lines.Length > 3 && int.TryParse(lines[3], out var port) ? port : null;
    }

    private static int FreeLoopbackPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static bool IsRoot => Environment.UserName == "root";

    private static async Task GiveToServerUserAsync(string directory, CancellationToken ct)
    {
        if (IsRoot)
        {
            await RunProcessAsync("chown", ["-R", "postgres:postgres", directory], ct, throwOnError: true);
        }
    }

    private static Task<int> RunAsync(string bin, string tool, IReadOnlyList<string> args, CancellationToken ct, bool throwOnError = true)
    {
        var exe = Path.Combine(bin, tool);
        return IsRoot
            ? RunProcessAsync("runuser", ["-u", "postgres", "--", exe, .. args], ct, throwOnError)
            : RunProcessAsync(exe, args, ct, throwOnError);
    }

    private static async Task<int> RunProcessAsync(string fileName, IReadOnlyList<string> args, CancellationToken ct, bool throwOnError)
    {
        var info = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            // The server must not inherit this process's working directory (it may be unreadable to postgres).
            WorkingDirectory = Path.GetTempPath(),
        };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        using var process = Process.Start(info) ?? throw new InvalidOperationException($"Could not start {fileName}.");
        // The server writes to its own log file (-l), so these pipes close when the tool exits.
        var stdout = process.StandardOutput.ReadToEndAsync(ct);
        var stderr = process.StandardError.ReadToEndAsync(ct);
        await process.WaitForExitAsync(ct);
        if (process.ExitCode != 0 && throwOnError)
        {
            var output = await stderr + await stdout;
            throw new InvalidOperationException($"{Path.GetFileName(fileName)} {string.Join(' ', args)} exited with {process.ExitCode}: {output.Trim()}");
        }

        return process.ExitCode;
    }
}

public sealed class PostgresBinariesNotFoundException(string message) : Exception(message);
