using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace MetaCompute.Api.Data.Migrations
{
    /// <inheritdoc />
    public partial class LiveReservationsIndex : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "ix_reservations_pool_id_tenant_id_status",
                table: "reservations");

            migrationBuilder.CreateIndex(
                name: "ix_reservations_pool_id_tenant_id",
                table: "reservations",
                columns: new[] { "pool_id", "tenant_id" },
                filter: "status IN ('Scheduled', 'Active')");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "ix_reservations_pool_id_tenant_id",
                table: "reservations");

            migrationBuilder.CreateIndex(
                name: "ix_reservations_pool_id_tenant_id_status",
                table: "reservations",
                columns: new[] { "pool_id", "tenant_id", "status" });
        }
    }
}
