using Npgsql;

namespace MetaCompute.Api.Tests.Infrastructure;

/// <summary>
/// A fingerprint of every table of a test database (rows and their contents), to show that a refused request changed
/// nothing: two snapshots are equal exactly when no row was added, removed or changed.
/// </summary>
public static class DatabaseSnapshot
{
    public static async Task<Dictionary<string, string>> TakeAsync(ApiFactory api)
    {
        await using var connection = await api.OpenConnectionAsync();
        var tables = new List<string>();
        await using (var list = new NpgsqlCommand("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename", connection))
        await using (var reader = await list.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                tables.Add(reader.GetString(0));
            }
        }

        var fingerprints = new Dictionary<string, string>();
        foreach (var table in tables)
        {
            await using var hash = new NpgsqlCommand($"SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM \"{table}\" t",
                connection);
            fingerprints[table] = (string)(await hash.ExecuteScalarAsync())!;
        }

        return fingerprints;
    }

    /// <summary>The tables whose rows differ between two snapshots.</summary>
    public static IReadOnlyList<string> Changed(Dictionary<string, string> before, Dictionary<string, string> after) =>
        before.Keys.Union(after.Keys).Where(t => before.GetValueOrDefault(t) != after.GetValueOrDefault(t)).Order().ToList();
}
