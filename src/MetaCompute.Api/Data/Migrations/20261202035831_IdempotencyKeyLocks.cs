using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace MetaCompute.Api.Data.Migrations
{
    /// <summary>
    /// The in-flight check for idempotency keys the pool decider did not look up before deciding (keys this process has
    /// not seen): sent with the batch's writes, it takes each key's transaction-scoped advisory lock, as the look-up
    /// does, and a key another transaction holds aborts the batch before its COMMIT, as a serialization failure, so the
    /// decider decides the requests again, each with its key looked up.
    /// </summary>
    public partial class IdempotencyKeyLocks : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.Sql("""
                CREATE FUNCTION take_idempotency_key_locks(lock_keys bigint[]) RETURNS integer
                LANGUAGE plpgsql AS $$
                DECLARE
                    lock_key bigint;
                BEGIN
                    FOREACH lock_key IN ARRAY lock_keys LOOP
                        IF NOT pg_try_advisory_xact_lock(lock_key) THEN
                            RAISE EXCEPTION 'an idempotency key of this batch is in flight in another transaction (lock %)', lock_key
                                USING ERRCODE = 'serialization_failure';
                        END IF;
                    END LOOP;
                    RETURN cardinality(lock_keys);
                END
                $$;
                """);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.Sql("DROP FUNCTION take_idempotency_key_locks(bigint[]);");
        }
    }
}
