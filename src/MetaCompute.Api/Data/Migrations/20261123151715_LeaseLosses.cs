using System;
using Microsoft.EntityFrameworkCore.Migrations;
using Npgsql.EntityFrameworkCore.PostgreSQL.Metadata;

#nullable disable

namespace MetaCompute.Api.Data.Migrations
{
    /// <inheritdoc />
    public partial class LeaseLosses : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropColumn(
                name: "degraded_gpus",
                table: "leases");

            migrationBuilder.CreateTable(
                name: "lease_losses",
                columns: table => new
                {
                    id = table.Column<long>(type: "bigint", nullable: false)
                        .Annotation("Npgsql:ValueGenerationStrategy", NpgsqlValueGenerationStrategy.IdentityAlwaysColumn),
                    lease_id = table.Column<Guid>(type: "uuid", nullable: false),
                    node_id = table.Column<int>(type: "integer", nullable: false),
                    gpu_count = table.Column<int>(type: "integer", nullable: false),
                    since = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_lease_losses", x => x.id);
                    table.CheckConstraint("ck_lease_losses_gpu_count", "gpu_count BETWEEN 1 AND 8");
                    table.ForeignKey(
                        name: "fk_lease_losses_leases_lease_id",
                        column: x => x.lease_id,
                        principalTable: "leases",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateIndex(
                name: "ix_lease_losses_lease_id",
                table: "lease_losses",
                column: "lease_id");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "lease_losses");

            migrationBuilder.AddColumn<int>(
                name: "degraded_gpus",
                table: "leases",
                type: "integer",
                nullable: false,
                defaultValue: 0);
        }
    }
}
