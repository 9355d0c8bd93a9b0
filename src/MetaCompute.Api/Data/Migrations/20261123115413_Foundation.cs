using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace MetaCompute.Api.Data.Migrations
{
    /// <inheritdoc />
    public partial class Foundation : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AlterDatabase()
                .Annotation("Npgsql:PostgresExtension:btree_gist", ",,");

            migrationBuilder.CreateTable(
                name: "gpu_models",
                columns: table => new
                {
                    id = table.Column<string>(type: "text", nullable: false),
                    display_name = table.Column<string>(type: "text", nullable: false),
                    vendor = table.Column<string>(type: "text", nullable: false),
                    memory_gb = table.Column<int>(type: "integer", nullable: false),
                    list_price_per_gpu_hour = table.Column<decimal>(type: "numeric(12,6)", precision: 12, scale: 6, nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_gpu_models", x => x.id);
                });

            migrationBuilder.CreateTable(
                name: "regions",
                columns: table => new
                {
                    id = table.Column<string>(type: "text", nullable: false),
                    display_name = table.Column<string>(type: "text", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_regions", x => x.id);
                });

            migrationBuilder.CreateTable(
                name: "tenants",
                columns: table => new
                {
                    id = table.Column<Guid>(type: "uuid", nullable: false),
                    name = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: false),
                    kind = table.Column<string>(type: "character varying(16)", maxLength: 16, nullable: false),
                    created_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_tenants", x => x.id);
                });

            migrationBuilder.CreateTable(
                name: "pools",
                columns: table => new
                {
                    id = table.Column<string>(type: "text", nullable: false),
                    region_id = table.Column<string>(type: "text", nullable: false),
                    gpu_model_id = table.Column<string>(type: "text", nullable: false),
                    allocation_unit = table.Column<string>(type: "character varying(8)", maxLength: 8, nullable: false),
                    xmin = table.Column<uint>(type: "xid", rowVersion: true, nullable: false),
                    prices_internal = table.Column<decimal>(type: "numeric(12,6)", precision: 12, scale: 6, nullable: false),
                    prices_on_demand = table.Column<decimal>(type: "numeric(12,6)", precision: 12, scale: 6, nullable: false),
                    prices_reserved = table.Column<decimal>(type: "numeric(12,6)", precision: 12, scale: 6, nullable: false),
                    prices_spot = table.Column<decimal>(type: "numeric(12,6)", precision: 12, scale: 6, nullable: false),
                    rules_holdback_gpus = table.Column<int>(type: "integer", nullable: false),
                    rules_max_duration_hours = table.Column<int>(type: "integer", nullable: false),
                    rules_max_gpus = table.Column<int>(type: "integer", nullable: false),
                    rules_max_start_ahead_days = table.Column<int>(type: "integer", nullable: false),
                    rules_min_duration_hours = table.Column<int>(type: "integer", nullable: false),
                    rules_min_gpus = table.Column<int>(type: "integer", nullable: false),
                    rules_recall_notice_seconds = table.Column<int>(type: "integer", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_pools", x => x.id);
                    table.CheckConstraint("ck_pools_duration_bounds", "rules_min_duration_hours >= 1 AND rules_max_duration_hours >= rules_min_duration_hours");
                    table.CheckConstraint("ck_pools_gpu_bounds", "rules_min_gpus >= 1 AND rules_max_gpus >= rules_min_gpus");
                    table.CheckConstraint("ck_pools_holdback_non_negative", "rules_holdback_gpus >= 0");
                    table.ForeignKey(
                        name: "fk_pools_gpu_models_gpu_model_id",
                        column: x => x.gpu_model_id,
                        principalTable: "gpu_models",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                    table.ForeignKey(
                        name: "fk_pools_regions_region_id",
                        column: x => x.region_id,
                        principalTable: "regions",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateTable(
                name: "sites",
                columns: table => new
                {
                    id = table.Column<int>(type: "integer", nullable: false),
                    region_id = table.Column<string>(type: "text", nullable: false),
                    name = table.Column<string>(type: "text", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_sites", x => x.id);
                    table.ForeignKey(
                        name: "fk_sites_regions_region_id",
                        column: x => x.region_id,
                        principalTable: "regions",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateTable(
                name: "api_keys",
                columns: table => new
                {
                    id = table.Column<Guid>(type: "uuid", nullable: false),
                    tenant_id = table.Column<Guid>(type: "uuid", nullable: true),
                    role = table.Column<string>(type: "character varying(16)", maxLength: 16, nullable: false),
                    name = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: false),
                    prefix = table.Column<string>(type: "text", nullable: false),
                    key_hash = table.Column<byte[]>(type: "bytea", nullable: false),
                    created_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    revoked_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_api_keys", x => x.id);
                    table.CheckConstraint("ck_api_keys_role_matches_tenant", "(role = 'Operator' AND tenant_id IS NULL) OR (role = 'Tenant' AND tenant_id IS NOT NULL)");
                    table.ForeignKey(
                        name: "fk_api_keys_tenants_tenant_id",
                        column: x => x.tenant_id,
                        principalTable: "tenants",
                        principalColumn: "id");
                });

            migrationBuilder.CreateTable(
                name: "fabric_islands",
                columns: table => new
                {
                    id = table.Column<int>(type: "integer", nullable: false),
                    site_id = table.Column<int>(type: "integer", nullable: false),
                    pool_id = table.Column<string>(type: "text", nullable: false),
                    name = table.Column<string>(type: "text", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_fabric_islands", x => x.id);
                    table.ForeignKey(
                        name: "fk_fabric_islands_pools_pool_id",
                        column: x => x.pool_id,
                        principalTable: "pools",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                    table.ForeignKey(
                        name: "fk_fabric_islands_sites_site_id",
                        column: x => x.site_id,
                        principalTable: "sites",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateTable(
                name: "racks",
                columns: table => new
                {
                    id = table.Column<int>(type: "integer", nullable: false),
                    island_id = table.Column<int>(type: "integer", nullable: false),
                    name = table.Column<string>(type: "text", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_racks", x => x.id);
                    table.ForeignKey(
                        name: "fk_racks_fabric_islands_island_id",
                        column: x => x.island_id,
                        principalTable: "fabric_islands",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateTable(
                name: "nodes",
                columns: table => new
                {
                    id = table.Column<int>(type: "integer", nullable: false),
                    rack_id = table.Column<int>(type: "integer", nullable: false),
                    island_id = table.Column<int>(type: "integer", nullable: false),
                    pool_id = table.Column<string>(type: "text", nullable: false),
                    hostname = table.Column<string>(type: "text", nullable: false),
                    state = table.Column<string>(type: "character varying(16)", maxLength: 16, nullable: false),
                    updated_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    xmin = table.Column<uint>(type: "xid", rowVersion: true, nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_nodes", x => x.id);
                    table.ForeignKey(
                        name: "fk_nodes_fabric_islands_island_id",
                        column: x => x.island_id,
                        principalTable: "fabric_islands",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                    table.ForeignKey(
                        name: "fk_nodes_pools_pool_id",
                        column: x => x.pool_id,
                        principalTable: "pools",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                    table.ForeignKey(
                        name: "fk_nodes_racks_rack_id",
                        column: x => x.rack_id,
                        principalTable: "racks",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateTable(
                name: "gpus",
                columns: table => new
                {
                    id = table.Column<long>(type: "bigint", nullable: false),
                    node_id = table.Column<int>(type: "integer", nullable: false),
                    index = table.Column<short>(type: "smallint", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_gpus", x => x.id);
                    table.CheckConstraint("ck_gpus_index_within_node", "index BETWEEN 0 AND 7");
                    table.ForeignKey(
                        name: "fk_gpus_nodes_node_id",
                        column: x => x.node_id,
                        principalTable: "nodes",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateIndex(
                name: "ix_api_keys_key_hash",
                table: "api_keys",
                column: "key_hash",
                unique: true);

            migrationBuilder.CreateIndex(
                name: "ix_api_keys_tenant_id_id",
                table: "api_keys",
                columns: new[] { "tenant_id", "id" });

            migrationBuilder.CreateIndex(
                name: "ix_fabric_islands_name",
                table: "fabric_islands",
                column: "name",
                unique: true);

            migrationBuilder.CreateIndex(
                name: "ix_fabric_islands_pool_id",
                table: "fabric_islands",
                column: "pool_id");

            migrationBuilder.CreateIndex(
                name: "ix_fabric_islands_site_id",
                table: "fabric_islands",
                column: "site_id");

            migrationBuilder.CreateIndex(
                name: "ix_gpus_node_id_index",
                table: "gpus",
                columns: new[] { "node_id", "index" },
                unique: true);

            migrationBuilder.CreateIndex(
                name: "ix_nodes_hostname",
                table: "nodes",
                column: "hostname",
                unique: true);

            migrationBuilder.CreateIndex(
                name: "ix_nodes_island_id",
                table: "nodes",
                column: "island_id");

            migrationBuilder.CreateIndex(
                name: "ix_nodes_pool_id_id",
                table: "nodes",
                columns: new[] { "pool_id", "id" });

            migrationBuilder.CreateIndex(
                name: "ix_nodes_rack_id",
                table: "nodes",
                column: "rack_id");

            migrationBuilder.CreateIndex(
                name: "ix_pools_gpu_model_id",
                table: "pools",
                column: "gpu_model_id");

            migrationBuilder.CreateIndex(
                name: "ix_pools_region_id",
                table: "pools",
                column: "region_id");

            migrationBuilder.CreateIndex(
                name: "ix_racks_island_id",
                table: "racks",
                column: "island_id");

            migrationBuilder.CreateIndex(
                name: "ix_racks_name",
                table: "racks",
                column: "name",
                unique: true);

            migrationBuilder.CreateIndex(
                name: "ix_sites_region_id_name",
                table: "sites",
                columns: new[] { "region_id", "name" },
                unique: true);

            migrationBuilder.CreateIndex(
                name: "ix_tenants_name",
                table: "tenants",
                column: "name",
                unique: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "api_keys");

            migrationBuilder.DropTable(
                name: "gpus");

            migrationBuilder.DropTable(
                name: "tenants");

            migrationBuilder.DropTable(
                name: "nodes");

            migrationBuilder.DropTable(
                name: "racks");

            migrationBuilder.DropTable(
                name: "fabric_islands");

            migrationBuilder.DropTable(
                name: "pools");

            migrationBuilder.DropTable(
                name: "sites");

            migrationBuilder.DropTable(
                name: "gpu_models");

            migrationBuilder.DropTable(
                name: "regions");
        }
    }
}
