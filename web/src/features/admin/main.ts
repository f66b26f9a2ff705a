import { createApp } from "vue";
import "../../shared/styles.css";
import AdminApp from "./AdminApp.vue";

createApp(AdminApp).mount("#app");
