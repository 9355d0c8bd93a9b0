using System;
using Microsoft.EntityFrameworkCore.Migrations;
using NpgsqlTypes;

#nullable disable

namespace MetaCompute.Api.Data.Migrations
{
    /// <inheritdoc />
    public partial class QueuesRecallAndMaintenance : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<int>(
                name: "fair_share_weight",
                table: "tenants",
                type: "integer",
                nullable: false,
                defaultValue: 1);

            migrationBuilder.AddColumn<DateTimeOffset>(
                name: "recall_at",
                table: "reservations",
                type: "timestamp with time zone",
                nullable: true);

            migrationBuilder.AddColumn<DateTimeOffset>(
                name: "wait_until",
                table: "reservations",
                type: "timestamp with time zone",
                nullable: true);

            migrationBuilder.CreateTable(
                name: "maintenance_windows",
                columns: table => new
                {
                    id = table.Column<Guid>(type: "uuid", nullable: false),
                    node_id = table.Column<int>(type: "integer", nullable: false),
                    pool_id = table.Column<string>(type: "text", nullable: false),
                    period = table.Column<NpgsqlRange<DateTime>>(type: "tstzrange", nullable: false),
                    reason = table.Column<string>(type: "character varying(500)", maxLength: 500, nullable: false),
                    created_by = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: true),
                    created_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_maintenance_windows", x => x.id);
                    table.ForeignKey(
                        name: "fk_maintenance_windows_nodes_node_id",
                        column: x => x.node_id,
                        principalTable: "nodes",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                    table.ForeignKey(
                        name: "fk_maintenance_windows_pools_pool_id",
                        column: x => x.pool_id,
                        principalTable: "pools",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.AddCheckConstraint(
                name: "ck_tenants_fair_share_weight",
                table: "tenants",
                sql: "fair_share_weight BETWEEN 1 AND 1000");

            migrationBuilder.AddCheckConstraint(
                name: "ck_reservations_pending_has_deadline",
                table: "reservations",
                sql: "status <> 'Pending' OR wait_until IS NOT NULL");

            migrationBuilder.CreateIndex(
                name: "ix_maintenance_windows_node_id",
                table: "maintenance_windows",
                column: "node_id");

            migrationBuilder.CreateIndex(
                name: "ix_maintenance_windows_pool_id",
                table: "maintenance_windows",
                column: "pool_id");

            // Two windows on one node never overlap, and no allocation may overlap a window, whichever is written
            // second: the scheduler keeps both apart under the pool's lock, and the database proves it.
            migrationBuilder.Sql("""
                ALTER TABLE maintenance_windows ADD CONSTRAINT ex_maintenance_windows_node_period
                    EXCLUDE USING gist (node_id WITH =, period WITH &&);

                CREATE FUNCTION refuse_allocations_in_maintenance() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF EXISTS (SELECT 1 FROM new_rows a JOIN maintenance_windows w ON w.node_id = a.node_id AND w.period && a.period) THEN
                        RAISE EXCEPTION 'an allocation overlaps a maintenance window' USING ERRCODE = 'exclusion_violation';
                    END IF;
                    RETURN NULL;
                END $$;
                CREATE TRIGGER tr_allocations_inserted_outside_maintenance AFTER INSERT ON allocations
                    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION refuse_allocations_in_maintenance();
                CREATE TRIGGER tr_allocations_updated_outside_maintenance AFTER UPDATE ON allocations
                    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION refuse_allocations_in_maintenance();

                CREATE FUNCTION refuse_maintenance_over_allocations() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF EXISTS (SELECT 1 FROM new_rows w JOIN gpus g ON g.node_id = w.node_id
                               JOIN allocations a ON a.gpu_id = g.id AND a.period && w.period) THEN
                        RAISE EXCEPTION 'a maintenance window overlaps an allocation' USING ERRCODE = 'exclusion_violation';
                    END IF;
                    RETURN NULL;
                END $$;
                CREATE TRIGGER tr_maintenance_windows_inserted_clear AFTER INSERT ON maintenance_windows
                    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION refuse_maintenance_over_allocations();
                """);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.Sql("""
                DROP TRIGGER tr_allocations_inserted_outside_maintenance ON allocations;
                DROP TRIGGER tr_allocations_updated_outside_maintenance ON allocations;
                DROP FUNCTION refuse_allocations_in_maintenance();
                DROP FUNCTION refuse_maintenance_over_allocations();
                """);

            migrationBuilder.DropTable(
                name: "maintenance_windows");

            migrationBuilder.DropCheckConstraint(
                name: "ck_tenants_fair_share_weight",
                table: "tenants");

            migrationBuilder.DropCheckConstraint(
                name: "ck_reservations_pending_has_deadline",
                table: "reservations");

            migrationBuilder.DropColumn(
                name: "fair_share_weight",
                table: "tenants");

            migrationBuilder.DropColumn(
                name: "recall_at",
                table: "reservations");

            migrationBuilder.DropColumn(
                name: "wait_until",
                table: "reservations");
        }
    }
}
