using MetaCompute.Api.Infrastructure;
using MetaCompute.Api.Tests.Infrastructure;
using Npgsql;

namespace MetaCompute.Api.Tests;

/// <summary>
/// Statements that fail inside transactions must not spoil the pooled connection they ran on (npgsql/npgsql#6391): with
/// the service's connection settings, one physical connection runs more distinct statements than a connection keeps
/// prepared, a third of them failing inside a transaction as malformed input makes them fail, and every valid
/// statement must still answer.
/// </summary>
public sealed class PooledConnectionTests(ApiFactory api) : IClassFixture<ApiFactory>
{
    private const int DistinctStatements = 100;
    private const int Statements = 2_000;

    [Fact]
    public async Task Valid_statements_keep_succeeding_on_a_pooled_connection_after_statements_failed_inside_its_transactions()
    {
        var unexpected = await RunAsync(explicitPrepare: false);
        Assert.Empty(unexpected);
    }

    [Fact]
    public async Task Explicitly_prepared_statements_keep_succeeding_after_they_failed_inside_a_transaction()
    {
        var unexpected = await RunAsync(explicitPrepare: true);
        Assert.Empty(unexpected);
    }

    /// <summary>Runs the mix on one pooled connection; returns the failures that were not the input's fault.</summary>
    private async Task<List<string>> RunAsync(bool explicitPrepare)
    {
        var table = "probe_" + (explicitPrepare ? "explicit" : "auto");
        var settings = new NpgsqlConnectionStringBuilder(PostgresSetup.WithServiceDefaults(api.ConnectionString)) { MaxPoolSize = 1, MinPoolSize = 1 };
        await using var source = NpgsqlDataSource.Create(settings.ConnectionString);
        await using (var create = source.CreateCommand($"CREATE TABLE {table} (id serial PRIMARY KEY, value varchar(10))"))
        {
            await create.ExecuteNonQueryAsync();
        }

        var random = new Random(1);
        var (failedAsExpected, unexpected) = (0, new List<string>());
        for (var i = 0; i < Statements; i++)
        {
            var n = random.Next(DistinctStatements);
            var sql = n % 2 == 0
                ? $"INSERT INTO {table} (value) VALUES ($1) RETURNING id /* {n} */"
                : $"SELECT id, value FROM {table} WHERE value = $1 LIMIT 1 /* {n} */";
            // A value too long for the column (22001) or with a NUL (22021) fails the statement, as bad input would.
            var value = random.Next(4) switch { 0 => "much too long a value", 1 => "nul\0here", _ => "fine" };
            var inTransaction = random.Next(2) == 0;
            await using var connection = await source.OpenConnectionAsync();
            await using var tx = inTransaction ? await connection.BeginTransactionAsync() : null;
            try
            {
                await using var command = new NpgsqlCommand(sql, connection, tx);
                command.Parameters.Add(new NpgsqlParameter { Value = value });
                if (explicitPrepare)
                {
                    await command.PrepareAsync();
                }

                await using (var reader = await command.ExecuteReaderAsync())
                {
                    while (await reader.ReadAsync())
                    {
                        _ = reader.GetInt32(0);
                    }
                }

                if (tx is not null)
                {
                    await tx.CommitAsync();
                }
            }
            catch (PostgresException e) when (e.SqlState is PostgresErrorCodes.StringDataRightTruncation or PostgresErrorCodes.CharacterNotInRepertoire)
            {
                failedAsExpected++;
                if (tx is not null)
                {
                    await tx.RollbackAsync();
                }
            }
            catch (Exception e) when (e is NpgsqlException or InvalidOperationException)
            {
                unexpected.Add($"statement {i} ({sql}, '{value}'): {e.GetType().Name}: {e.Message}");
            }
        }

        Assert.InRange(failedAsExpected, Statements / 3, Statements * 2 / 3);
        return unexpected;
    }
}
